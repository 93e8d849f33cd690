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
    # the limits the health checks name
    QT_TRANSLATE_NOOP("HealthReasons", "95 % interval of the error rate <= {limit}"),
    QT_TRANSLATE_NOOP("HealthReasons", "95 % interval of end-to-end success >= {limit}"),
    QT_TRANSLATE_NOOP("HealthReasons", "domain P95 <= {ratio} x legacy P95, or within {floor} ms of it, "
                      "in {n} consecutive windows"),
    # the stage gate's checks (app.rollout.health.evaluate_gate)
    QT_TRANSLATE_NOOP("HealthReasons", "no rollback latched"),
    QT_TRANSLATE_NOOP("HealthReasons", "no open problem report"),
    QT_TRANSLATE_NOOP("HealthReasons", "already at 100 %: there is no further stage"),
    QT_TRANSLATE_NOOP("HealthReasons", "`edge-station verify` has not passed yet"),
    QT_TRANSLATE_NOOP("HealthReasons", "the last `edge-station verify` is older than the last settings change: "
                      "run it again"),
    QT_TRANSLATE_NOOP("HealthReasons", "the last `edge-station verify` passed on this version ({version}), "
                      "after the last settings change"),
    QT_TRANSLATE_NOOP("HealthReasons", "the last `edge-station verify` failed ({m} mismatches, {f} failures)"),
    QT_TRANSLATE_NOOP("HealthReasons", "held {held} at {stage} % (the plan: at least {hold}; {left} left)"),
    QT_TRANSLATE_NOOP("HealthReasons", "held {held} at {stage} % (the plan: at least {hold})"),
    QT_TRANSLATE_NOOP("HealthReasons", "every operation of the {track} track has at least {need} routed domain "
                      "calls at this stage"),
    QT_TRANSLATE_NOOP("HealthReasons", "coverage: need {need} routed domain calls of each operation at this stage; "
                      "unseen on the domain path: {ops}; too few: {low}"),
    QT_TRANSLATE_NOOP("HealthReasons", "coverage: need {need} routed domain calls of each operation at this stage; "
                      "unseen on the domain path: {ops}"),
    QT_TRANSLATE_NOOP("HealthReasons", "coverage: need {need} routed domain calls of each operation at this stage; "
                      "too few: {low}"),
    QT_TRANSLATE_NOOP("HealthReasons", "no routed domain call at this stage yet"),
    QT_TRANSLATE_NOOP("HealthReasons", "0 errors in {n} routed domain calls"),
    QT_TRANSLATE_NOOP("HealthReasons", "latency: too few routed calls to compare (domain {d}, legacy {l}, "
                      "need {need} each)"),
    QT_TRANSLATE_NOOP("HealthReasons", "{mm} shadow comparison mismatches at this stage (must be 0)"),
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
