"""The health checks' reason texts, translated for the window.

The rollout's health (``app.rollout.analysis``) writes its reasons in English, with the numbers
in them (they go to the audit log, the CLI and the API as they are). The window shows them in
the operator's language: each known reason has an English template here (the same words as
the analysis writes, ``{name}`` where a value goes); a reason that matches one is shown as the
template's translation with the same values, any other text as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication

#: English templates marked for translation; the first that matches a reason wins
TEMPLATES: tuple[str, ...] = (
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "above {limit} with 95 % confidence"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "below {limit}"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "inconclusive, {need} more clean calls to tell"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain error rate {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "inconclusive, too many errors to call it healthy"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "below {limit} with 95 % confidence"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "at least {limit}"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "inconclusive, {need} more successful calls to tell"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: end-to-end success {k}/{n} ({rate}, 95 % interval {lo}-{hi}): "
                      "inconclusive, too many failures to call it healthy"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: latency: too few calls to compare (domain {d}, legacy {l}, "
                      "need {need} each)"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): "
                      "within the bound"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): "
                      "under the {floor} ms floor"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): "
                      "above {limit} x in {count} consecutive windows"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain P95 {d} ms vs legacy P95 {l} ms ({ratio} x, {diff} ms): "
                      "above {limit} x in window {count} of {of}"),
    QT_TRANSLATE_NOOP("HealthReasons", "{track}: no domain calls in the window"),
    QT_TRANSLATE_NOOP("HealthReasons", "{track}: not enough domain traffic to judge (inconclusive for {m} min)"),
)


@lru_cache(maxsize=64)
def _pattern(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>.+?)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$", re.DOTALL)


def translate_reason(text: str) -> str:
    """``text`` (a health reason in English) in the window's language; unknown texts unchanged."""
    for template in TEMPLATES:
        m = _pattern(template).match(text or "")
        if m:
            return QCoreApplication.translate("HealthReasons", template).format(**m.groupdict())
    return text


STATUS_WORDS = {
    "pass": QT_TRANSLATE_NOOP("HealthReasons", "pass"),
    "fail": QT_TRANSLATE_NOOP("HealthReasons", "fail"),
    "inconclusive": QT_TRANSLATE_NOOP("HealthReasons", "inconclusive"),
    "pending": QT_TRANSLATE_NOOP("HealthReasons", "pending"),
    "ok": QT_TRANSLATE_NOOP("HealthReasons", "ok"),
    "alert": QT_TRANSLATE_NOOP("HealthReasons", "alert"),
}


def translate_status(status: str) -> str:
    word = STATUS_WORDS.get(status)
    return QCoreApplication.translate("HealthReasons", word) if word else status
