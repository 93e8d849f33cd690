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

from PySide6.QtCore import QCoreApplication

from app.ui.common.texts import QT_TRANSLATE_NOOP

#: English templates marked for translation; the first that matches a reason wins
TEMPLATES: tuple[str, ...] = (
    # suffixes the gate and the checklist add to another reason (``{msg}`` is translated in its turn);
    # first, so that a suffixed reason is not taken for its bare form
    QT_TRANSLATE_NOOP("HealthReasons", "{msg} ({c} of the calls by the canary)"),
    QT_TRANSLATE_NOOP("HealthReasons", "{msg} (the running station applied the rollback {s} s after it; "
                      "{n} calls were in flight before that)"),
    QT_TRANSLATE_NOOP("HealthReasons", "{msg} (the running station applied the rollback {s} s after it)"),
    QT_TRANSLATE_NOOP("HealthReasons", "{msg} (limit {limit} x)"),
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
    QT_TRANSLATE_NOOP("HealthReasons", "a rollback of the {track} track is latched ({why}); clear it with "
                      "`edge-station rollout resume --track {track_id} --reason ...`"),
    QT_TRANSLATE_NOOP("HealthReasons", "1 open problem report against the {track} track "
                      "(resolve with `edge-station rollout report resolve ID --note ...`)"),
    QT_TRANSLATE_NOOP("HealthReasons", "{n} open problem reports against the {track} track "
                      "(resolve with `edge-station rollout report resolve ID --note ...`)"),
    QT_TRANSLATE_NOOP("HealthReasons", "the last `edge-station verify` ran on version {ran}, not on this version "
                      "{version}: run it again"),
    QT_TRANSLATE_NOOP("HealthReasons", "{k} errors in {n} routed domain calls: too few calls to show a rate below "
                      "{limit} (need {need})"),
    QT_TRANSLATE_NOOP("HealthReasons", "domain error rate {rate} over {n} routed calls (must be below {limit})"),
    QT_TRANSLATE_NOOP("HealthReasons", "{op}: domain P95 {d} ms is {ratio} x legacy P95 {l} ms"),
    QT_TRANSLATE_NOOP("HealthReasons", "no legacy baseline at this stage ({l} legacy, {d} domain calls); "
                      "judged at the previous stages"),
    # decision point 2 (app.rollout.control.RolloutControl.decision_point_2)
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the rules track held 100 % through its gate"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the rules track has not held 100 % through its gate "
                      "({needs})"),
    QT_TRANSLATE_NOOP("HealthReasons", "the rules track is at {percent} %"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the camera operations passed `edge-station verify` "
                      "after the last change"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the camera operations have no passing verification "
                      "after the last change: {why}"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the rollback of the cameras track has not been rehearsed "
                      "(`edge-station rollout rehearse --track cameras`)"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the last rollback rehearsal of the cameras track failed: "
                      "{why}"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the rollback rehearsal ran on version {ran}, not on "
                      "{version}: rehearse again"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: the rollback rehearsal is older than the last settings "
                      "change"),
    QT_TRANSLATE_NOOP("HealthReasons", "decision point 2: a rollback of the cameras track was rehearsed and "
                      "verified on a scratch station"),
    # the rollback checklist (app.rollout.health.rollback_checklist)
    QT_TRANSLATE_NOOP("HealthReasons", "target domain share of the {track} track is {percent} %"),
    QT_TRANSLATE_NOOP("HealthReasons", "{n} current keys of the {track} track still route to the domain path"),
    QT_TRANSLATE_NOOP("HealthReasons", "{n} domain calls (routed, forced or canary) of the {track} track since "
                      "the rollback"),
    QT_TRANSLATE_NOOP("HealthReasons", "no domain calls (routed, forced or canary) so far; the window ends {s} s "
                      "from now"),
    QT_TRANSLATE_NOOP("HealthReasons", "no domain calls (routed, forced or canary) in the {s} s after the rollback"),
    QT_TRANSLATE_NOOP("HealthReasons", "{n} shadow comparisons on the domain path of the {track} track since "
                      "the rollback"),
    QT_TRANSLATE_NOOP("HealthReasons", "no shadow comparisons on the domain path so far; the window ends {s} s "
                      "from now"),
    QT_TRANSLATE_NOOP("HealthReasons", "no shadow comparisons on the domain path in the {s} s after the rollback"),
    QT_TRANSLATE_NOOP("HealthReasons", "legacy error rate {rate} over {n} calls since the rollback"),
    QT_TRANSLATE_NOOP("HealthReasons", "{n} legacy calls ({e} errors) so far; judged when the window ends"),
    QT_TRANSLATE_NOOP("HealthReasons", "{n} legacy calls ({e} errors) of the {track} track since the rollback: "
                      "too few to judge; run some of its operations and check again"),
    # the gate's and the checklist's limits
    QT_TRANSLATE_NOOP("HealthReasons", "<= {limit} x legacy P95"),
    QT_TRANSLATE_NOOP("HealthReasons", "< {limit}"),
    QT_TRANSLATE_NOOP("HealthReasons", "<= {limit}"),
)

#: the parts of a reason that are reasons in their turn (joined with "; ") and translated too
_NESTED = frozenset({"msg", "needs", "why"})

#: the rollout's track names, as reasons and the page name them
TRACK_NAMES = {
    "rules": QT_TRANSLATE_NOOP("HealthReasons", "rules"),
    "cameras": QT_TRANSLATE_NOOP("HealthReasons", "cameras"),
}


def translate_track(track: str) -> str:
    """A track's name (``rules``, ``cameras``) in the window's language; other names unchanged."""
    word = TRACK_NAMES.get(track)
    return QCoreApplication.translate("HealthReasons", word) if word else track


@lru_cache(maxsize=64)
def _pattern(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos:m.start()]))
        name = m.group(1)  # a nested reason takes all it can (its own text may hold " (")
        out.append(f"(?P<{name}>.+)" if name in _NESTED else f"(?P<{name}>.+?)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$", re.DOTALL)


def _translate_joined(text: str) -> str:
    """Reasons joined with "; " (a reason may hold "; " itself): the longest run that is one known reason
    at a time, each translated."""
    parts, out, i = text.split("; "), [], 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            chunk = "; ".join(parts[i:j])
            done = translate_reason(chunk)
            if done != chunk or j == i + 1:
                out.append(done)
                i = j
                break
    return "; ".join(out)


def translate_reason(text: str) -> str:
    """``text`` (a health reason in English) in the window's language; unknown texts unchanged."""
    for template in TEMPLATES:
        m = _pattern(template).match(text or "")
        if m:
            values = m.groupdict()
            for name in _NESTED & values.keys():
                values[name] = _translate_joined(values[name])
            if "track" in values:  # the name in words (``{track_id}``: as a command takes it, untranslated)
                values["track"] = translate_track(values["track"])
            return QCoreApplication.translate("HealthReasons", template).format(**values)
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
