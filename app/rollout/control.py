"""Rollout control on the store, per track: settings, advance, rollback, resume, reports, evidence.

Everything here works on the database alone, so the CLI (another process) and the
running station use the same code: settings changes are audited in the same
transaction as the change, and the stage gate and rollback checklist of a track are
judged on the audit log (which the router writes for every call).

The rules of docs/rollout.md, enforced here:

* raising a track's share goes through its gate (or an explicit, audited override
  reason); lowering it never needs one;
* the cameras track leaves 0 % only at decision point 2 (the rules track complete
  at 100 %, a fresh verification, a rehearsed and verified rollback of the cameras
  track) or with an override reason;
* a rollback latches the track; only :meth:`RolloutControl.resume`, with a reason,
  clears the latch, and it leaves the track at 0 %;
* a start whose environment turns a running track off (``USE_DOMAIN_SERVICE=false``,
  ``ROLLOUT_PERCENT=0``) is recorded as a rollback of that track
  (:meth:`RolloutControl.note_environment_rollback`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app import __version__
from app.domain.audit import AuditEntry, ProblemReport
from app.domain.errors import ConstraintViolation
from app.domain.fleet_rollout import FLEET_PREFIX, FleetRolloutState, is_inside
from app.domain.operations import TRACKS
from app.rollout.decision import (
    R_PERCENT_IN,
    R_PERCENT_OUT,
    KeysProvider,
    build_populations,
    key_share,
    keys_on_domain,
    store_keys_provider,
)
from app.rollout.errors import GateRefused, RolloutError, RolloutLocked, RolloutSettingsError
from app.rollout.health import (
    Check,
    Checklist,
    GateEvidence,
    GateResult,
    RollbackEvidence,
    evaluate_gate,
    rollback_checklist,
    verification_check,
)
from app.rollout.health import Status as CheckStatus
from app.rollout.metrics import DOMAIN, LEGACY, SHADOW_MISMATCH_OP, WindowStats, stats_from_audit
from app.rollout.settings import (
    ENV_PERCENT,
    ENV_USE_DOMAIN,
    F_LATCH_REASON,
    F_LATCHED,
    F_LATCHED_AT,
    F_PERCENT,
    F_STAGE_ENTERED_AT,
    F_USE_DOMAIN,
    K_AUTO_ROLLBACK,
    K_CANARY_RATE,
    K_LAST_REHEARSAL,
    K_LAST_VERIFY,
    K_SALT,
    K_SHADOW_RATE,
    MAX_CANARY_RATE,
    T_PREFIX,
    TRACK_FIELDS,
    TRACK_NAMES,
    RolloutSettings,
    Thresholds,
    TrackSettings,
    check_track,
    new_salt,
    parse_bool,
    parse_percent,
    parse_tracks,
    track_key,
)

if TYPE_CHECKING:
    from app.store.uow import Store

#: how many audit entries a gate or checklist reads at most
AUDIT_SCAN_LIMIT = 500_000

OP_SETTINGS = "settings.set"
OP_ROLLBACK = "rollout.rollback"
OP_RESUME = "rollout.resume"
OP_ADVANCE = "rollout.advance"
OP_OVERRIDE = "rollout.override"
OP_VERIFY = "rollout.verify"
OP_REHEARSE = "rollout.rehearse"
OP_REPORT = "rollout.report"
OP_REPORT_RESOLVED = "rollout.report_resolved"
#: a sampled shadow comparison that agreed (a disagreement is ``SHADOW_MISMATCH_OP``)
SHADOW_OP = "rollout.shadow"
#: a running router applied a track's rollback latch (written by the router on reload)
LATCH_APPLIED_OP = "rollout.latch_applied"

#: callers whose calls are recorded but never count as gate evidence, even when routed
UNCOUNTED_ACTORS = frozenset({"verify", "rehearse"})
CANARY_ACTOR = "canary"
ENV_ACTOR = "environment"

#: settings whose change does not make a verification stale (stage moves, records, the salt, UI-only keys)
_RUNTIME_KEYS = frozenset({track_key(t, f) for t in TRACK_NAMES for f in TRACK_FIELDS}
                          | {K_SALT, K_LAST_VERIFY, K_LAST_REHEARSAL, "station.demo_seeded",
                             "alerts.default_rules_seeded"})
_UI_PREFIXES = ("ui.", "kiosk.", "api.")

ROUTED = (R_PERCENT_IN, R_PERCENT_OUT)


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _unix(d: datetime | None) -> float | None:
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def report_dict(r: ProblemReport) -> dict[str, Any]:
    return {"id": r.id, "track": r.track, "stage": r.stage, "text": r.text, "operator": r.operator,
            "camera_id": r.camera_id, "rule_id": r.rule_id, "created_at": _unix(r.created_at),
            "resolved_at": _unix(r.resolved_at), "resolved_by": r.resolved_by, "resolution": r.resolution,
            "open": r.open}


@dataclass(frozen=True)
class TrackStatus:
    track: str
    settings: TrackSettings
    keys: dict[str, dict[str, Any]]
    gate: GateResult
    checklist: Checklist | None
    reports: tuple[ProblemReport, ...]  # open ones

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.as_dict(),
            "keys": {k: {kk: vv for kk, vv in v.items() if kk != "domain_keys"} for k, v in self.keys.items()},
            "gate": self.gate.as_dict(),
            "rollback_checklist": self.checklist.as_dict() if self.checklist else None,
            "open_reports": [report_dict(r) for r in self.reports],
        }


@dataclass(frozen=True)
class Status:
    settings: RolloutSettings
    tracks: dict[str, TrackStatus]

    def as_dict(self) -> dict[str, Any]:
        return {"settings": self.settings.as_dict(), "tracks": {n: t.as_dict() for n, t in self.tracks.items()}}


def gate_entries(entries: Iterable[AuditEntry], track: str) -> tuple[list[AuditEntry], int]:
    """The entries that count as gate evidence for ``track``: routed calls of its operations (no
    forced, verify, rehearsal calls) and its shadow mismatches; and how many calls the canary made."""
    ops = set(TRACKS[track])
    out: list[AuditEntry] = []
    canary = 0
    for e in entries:
        if e.op in ops:
            if e.reason in ROUTED and e.actor not in UNCOUNTED_ACTORS:
                out.append(e)
                canary += e.calls if e.actor == CANARY_ACTOR and e.path == DOMAIN else 0  # its domain evidence
        elif e.op == SHADOW_MISMATCH_OP and e.reason in ops:
            out.append(e)
    return out, canary


class RolloutControl:
    def __init__(self, store: Store, *, env: Mapping[str, str] | None = None, wall: Callable[[], float] = time.time,
                 keys_provider: KeysProvider | None = None, version: str = __version__,
                 station_id: Callable[[], str | None] | None = None):
        """``station_id`` names this station in its fleet (the key of the fleet rollout's share,
        app.domain.fleet_rollout); None, or a callable answering None: every fleet share counts it inside."""
        self.store = store
        self.env = os.environ if env is None else env
        self.wall = wall
        self.version = version
        self.keys_provider = keys_provider or store_keys_provider(store)
        self._station_id = station_id or (lambda: None)

    # ------------------------------------------------------------ reading

    def _stored(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(rollout.* settings, fleet.rollout.* settings)`` from one read."""
        with self.store.uow() as uow:
            every = uow.settings.all(prefixes=("rollout.", FLEET_PREFIX))
        return ({k: v for k, v in every.items() if k.startswith("rollout.")},
                {k: v for k, v in every.items() if k.startswith(FLEET_PREFIX)})

    def load(self) -> RolloutSettings:
        """The effective settings; creates the per-station salt on first use (audited)."""
        stored, fleet = self._stored()
        if not stored.get(K_SALT):
            try:
                with self.store.uow() as uow:
                    uow.settings.set(K_SALT, new_salt())
                    uow.audit.add(AuditEntry(op=OP_SETTINGS, outcome="ok", key=K_SALT, actor="station",
                                             reason="created the per-station bucketing salt"))
                    uow.commit()
            except ConstraintViolation:
                pass  # another process created it at the same moment: use theirs
            stored, fleet = self._stored()
        return self._with_fleet(RolloutSettings.from_stored(stored, self.env), fleet)

    def _with_fleet(self, s: RolloutSettings, fleet_stored: Mapping[str, Any]) -> RolloutSettings:
        """Apply the fleet rollout: a station outside a track's fleet share routes it as at 0 %.
        The stations are read only when some fleet percent leaves stations out."""
        if not fleet_stored:
            return s
        state = FleetRolloutState.from_stored(fleet_stored)
        sid = self._station_id()
        ids: list[str] = []
        if state.any_share and sid is not None:
            from app.store.stations import StationRegistry

            ids = StationRegistry(self.store).population_ids()
        for name in TRACK_NAMES:
            ft = state.track(name)
            if ft.percent is not None:
                s = s.with_track(name, fleet_in=is_inside(state, name, sid, ids), fleet_percent=ft.percent)
        return s

    def _entries(self, since: float) -> list[AuditEntry]:
        with self.store.uow() as uow:
            return uow.audit.recent(limit=AUDIT_SCAN_LIMIT, since=_ts(since))

    def audit_stats(self, since: float, window_s: float | None = None, track: str | None = None) -> WindowStats:
        """Figures from the audit log since ``since``: of every call, or of ``track``'s gate evidence."""
        entries = self._entries(since)
        if track is not None:
            entries, _ = gate_entries(entries, track)
        return stats_from_audit(entries, window_s if window_s is not None else max(self.wall() - since, 0.0))

    def settings_changed_at(self) -> float | None:
        """When a setting that a verification depends on last changed (stage moves and records excluded)."""
        with self.store.uow() as uow:
            for e in uow.audit.recent(limit=5000, op_prefix=OP_SETTINGS):
                if e.key in _RUNTIME_KEYS or e.key.startswith(_UI_PREFIXES):
                    continue
                return _unix(e.at)
        return None

    # ------------------------------------------------------------ changing

    def _change(self, values: dict[str, Any], *, actor: str, reason: str,
                extra: Iterable[AuditEntry] = ()) -> None:
        """Write settings and one audit entry per changed key, in one transaction (stamped with
        ``wall``, the clock the gate and the checklist are judged on)."""
        at = _ts(self.wall())
        with self.store.uow() as uow:
            for key, new in values.items():
                old = uow.settings.get(key)
                if old == new:
                    continue
                uow.settings.set(key, new)
                uow.audit.add(AuditEntry(op=OP_SETTINGS, outcome="ok", key=key, actor=actor, reason=reason[:80],
                                         detail={"old": old, "new": new}, at=at))
            for e in extra:
                uow.audit.add(e if e.at is not None else replace(e, at=at))
            uow.commit()

    def _refuse_locked(self, ts: TrackSettings, fields_: list[str], what: str) -> None:
        locked = ts.locked_fields()
        hit = [f for f in fields_ if f in locked]
        if hit:
            names = ", ".join(f"{locked[f]}={self.env.get(locked[f])}" for f in hit)
            raise RolloutLocked(f"cannot {what} of the {ts.name} track: overridden by the environment ({names}); "
                                "unset it first")

    def set(self, *, use_domain: object = None, percent: object = None, track: str | None = "all",
            actor: str = "", reason: str = "set", override_reason: str | None = None) -> RolloutSettings:
        """Set the toggle and/or the percent of one track or of ``"all"`` (validated, all or nothing).

        Lowering a share is always allowed. Raising it goes through the track's gate: allowed up to
        the gate's next stage when the gate passes, otherwise refused (:class:`GateRefused`) unless
        ``override_reason`` is given (audited as ``rollout.override``). A latched track is refused:
        clear the latch with :meth:`resume`.
        """
        if use_domain is None and percent is None:
            raise RolloutSettingsError("nothing to set: give the domain toggle, the percent, or both")
        tracks = parse_tracks(track)
        use = parse_bool(use_domain, what="domain") if use_domain is not None else None
        pct = parse_percent(percent, what="percent") if percent is not None else None
        override = (override_reason or "").strip()
        cur = self.load()
        now = self.wall()
        values: dict[str, Any] = {}
        extra: list[AuditEntry] = []
        for name in tracks:
            ts = cur.track(name)
            wanted = [f for f, v in ((F_USE_DOMAIN, use), (F_PERCENT, pct)) if v is not None]
            self._refuse_locked(ts, wanted, "change the rollout")
            new_use = ts.use_domain if use is None else use
            new_pct = ts.percent if pct is None else pct
            new_target = new_pct if new_use else 0
            if ts.latched and new_target > 0:
                raise RolloutError(
                    f"the {name} track is latched by a rollback ({ts.latch_reason or 'no reason recorded'}): "
                    f"clear it with `edge-station rollout resume --track {name} --reason ...` first")
            if new_target > ts.target_percent:
                gate = self.gate(name, cur)
                allowed = gate.passed and gate.next is not None and new_target <= gate.next
                if not allowed:
                    why = gate.needs if not gate.passed else [
                        f"{new_target} % is beyond the next stage ({gate.next} %): advance one stage at a time"]
                    if not override:
                        raise GateRefused(
                            f"cannot raise the {name} track from {ts.target_percent} % to {new_target} %: "
                            + "; ".join(why) + " (or give an override reason)", gate)
                    extra.append(AuditEntry(
                        op=OP_OVERRIDE, outcome="ok", key=name, actor=actor, reason=override[:80],
                        detail={"from": ts.target_percent, "to": new_target, "override_reason": override,
                                "gate_needs": why}))
            if use is not None:
                values[track_key(name, F_USE_DOMAIN)] = use
            if pct is not None:
                values[track_key(name, F_PERCENT)] = pct
            if new_target != ts.target_percent:
                values[track_key(name, F_STAGE_ENTERED_AT)] = now
        self._change(values, actor=actor, reason=reason, extra=extra)
        return self.load()

    def set_options(self, changes: Mapping[str, object], *, actor: str = "") -> RolloutSettings:
        """Change auto-rollback, the shadow or canary rate, or thresholds (names as in :class:`Thresholds`).

        Everything is validated before anything is written."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "auto_rollback":
                values[K_AUTO_ROLLBACK] = parse_bool(value, what="auto_rollback")
            elif name in ("shadow_rate", "canary_rate"):
                hi = 1.0 if name == "shadow_rate" else MAX_CANARY_RATE
                try:
                    rate = float(value)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    rate = -1.0
                if not 0.0 <= rate <= hi:
                    unit = "" if name == "shadow_rate" else " (calls per minute)"
                    raise RolloutSettingsError(f"{name}={value!r} must be a number from 0 to {hi:g}{unit}")
                values[K_SHADOW_RATE if name == "shadow_rate" else K_CANARY_RATE] = rate
            else:
                values[T_PREFIX + name] = Thresholds.coerce(name, value)
        self._change(values, actor=actor, reason="options")
        return self.load()

    def rollback(self, *, track: str | None = "all", actor: str = "", reason: str = "manual rollback",
                 source: str = "manual") -> RolloutSettings:
        """One step per track: toggle off, percent 0, latch set (the latch wins over force and environment)."""
        tracks = parse_tracks(track)
        cur = self.load()
        now = self.wall()
        values: dict[str, Any] = {}
        extra = []
        for name in tracks:
            ts = cur.track(name)
            extra.append(AuditEntry(op=OP_ROLLBACK, outcome="ok", key=name, actor=actor, reason=reason[:80],
                                    detail={"track": name, "from_percent": ts.target_percent, "source": source,
                                            "stored_percent": ts.stored_percent, "env_overrides": ts.overrides}))
            values.update({track_key(name, F_USE_DOMAIN): False, track_key(name, F_PERCENT): 0,
                           track_key(name, F_LATCHED): True, track_key(name, F_LATCH_REASON): reason[:200],
                           track_key(name, F_LATCHED_AT): now, track_key(name, F_STAGE_ENTERED_AT): now})
        self._change(values, actor=actor, reason=reason, extra=extra)
        return self.load()

    def resume(self, *, track: str | None, actor: str = "", reason: str = "") -> RolloutSettings:
        """Clear the rollback latch of a track (audited ``rollout.resume``). The track stays at 0 %
        with the domain path off; it restarts through its gate (``advance``)."""
        if not (reason or "").strip():
            raise RolloutSettingsError("resume needs a reason (what was found and fixed); it goes to the audit log")
        tracks = parse_tracks(track)
        cur = self.load()
        latched = [n for n in tracks if cur.track(n).latched]
        if not latched:
            raise RolloutSettingsError(
                f"nothing to resume: no rollback is latched on {' or '.join(tracks)}")
        now = self.wall()
        values: dict[str, Any] = {}
        extra = []
        for name in latched:
            ts = cur.track(name)
            extra.append(AuditEntry(op=OP_RESUME, outcome="ok", key=name, actor=actor, reason=reason[:80],
                                    detail={"track": name, "latch_reason": ts.latch_reason,
                                            "latched_at": ts.latched_at}))
            values.update({track_key(name, F_LATCHED): False, track_key(name, F_LATCH_REASON): "",
                           track_key(name, F_LATCHED_AT): None, track_key(name, F_USE_DOMAIN): False,
                           track_key(name, F_PERCENT): 0, track_key(name, F_STAGE_ENTERED_AT): now})
        self._change(values, actor=actor, reason=f"resume: {reason}", extra=extra)
        return self.load()

    def note_environment_rollback(self) -> list[str]:
        """At a station's start: a track the database has on but the environment turns off
        (``USE_DOMAIN_SERVICE=false`` / ``ROLLOUT_PERCENT=0``, or the per-track variables) is rolled
        back and latched, audited as ``rollout.rollback`` by the environment. Returns those tracks."""
        cur = self.load()
        done = []
        for name in TRACK_NAMES:
            ts = cur.track(name)
            stored_target = ts.stored_percent if ts.stored_use_domain else 0
            if ts.latched or not ts.overrides or stored_target == 0 or ts.target_percent != 0:
                continue
            route = " ".join(v for v in ts.overrides.values())
            self.rollback(track=name, actor=ENV_ACTOR, reason=f"environment route: {route}", source="environment")
            done.append(name)
        return done

    # ------------------------------------------------------------ gate

    def open_reports(self, track: str | None = None) -> list[ProblemReport]:
        with self.store.uow() as uow:
            return uow.reports.list(track, open_only=True)

    def rehearsal_check(self, settings: RolloutSettings, changed_at: float | None) -> Check:
        lr = settings.last_rehearsal or {}
        name = "dp2_rollback_rehearsed"
        if not lr:
            return Check(name, CheckStatus.FAIL, None, True,
                         "decision point 2: the rollback of the cameras track has not been rehearsed "
                         "(`edge-station rollout rehearse --track cameras`)")
        if not lr.get("passed") or lr.get("track") not in ("cameras", "all"):
            return Check(name, CheckStatus.FAIL, False, True,
                         "decision point 2: the last rollback rehearsal of the cameras track failed: " +
                         "; ".join(lr.get("failed", []) or ["see the audit log"]))
        if lr.get("version") != self.version:
            return Check(name, CheckStatus.FAIL, lr.get("version"), self.version,
                         f"decision point 2: the rollback rehearsal ran on version {lr.get('version')}, not on "
                         f"{self.version}: rehearse again")
        at = lr.get("at")
        if changed_at is not None and (not isinstance(at, int | float) or at < changed_at):
            return Check(name, CheckStatus.FAIL, at, changed_at,
                         "decision point 2: the rollback rehearsal is older than the last settings change")
        return Check(name, CheckStatus.PASS, True, True,
                     "decision point 2: a rollback of the cameras track was rehearsed and verified "
                     "on a scratch station")

    def decision_point_2(self, settings: RolloutSettings | None = None,
                         changed_at: float | None = None) -> tuple[Check, ...]:
        """The checks the cameras track must pass to leave 0 % (docs/rollout.md, decision point 2)."""
        s = settings or self.load()
        rules = self.gate("rules", s)
        if rules.complete:
            c1 = Check("dp2_rules_complete", CheckStatus.PASS, 100, 100,
                       "decision point 2: the rules track held 100 % through its gate")
        else:
            needs = rules.needs if rules.current == 100 else [f"the rules track is at {rules.current} %"]
            c1 = Check("dp2_rules_complete", CheckStatus.FAIL, rules.current, 100,
                       "decision point 2: the rules track has not held 100 % through its gate ("
                       + "; ".join(needs) + ")")
        v = verification_check(s.last_verify, changed_at, self.version)
        c2 = Check("dp2_camera_verification", v.status, v.value, v.limit,
                   "decision point 2: the camera operations " + (
                       "passed `edge-station verify` after the last change" if v.status is CheckStatus.PASS
                       else "have no passing verification after the last change: " + v.message))
        return (c1, c2, self.rehearsal_check(s, changed_at))

    def gate(self, track: str, settings: RolloutSettings | None = None) -> GateResult:
        track = check_track(track)
        s = settings or self.load()
        ts = s.track(track)
        now = self.wall()
        since = ts.stage_entered_at if ts.stage_entered_at is not None else now
        entries, canary = gate_entries(self._entries(since), track)
        changed_at = self.settings_changed_at()
        dp2: tuple[Check, ...] = ()
        if track == "cameras" and ts.target_percent == 0:
            dp2 = self.decision_point_2(s, changed_at)
        evidence = GateEvidence(
            at_stage=stats_from_audit(entries, max(now - since, 0.0)), canary_calls=canary,
            open_reports=tuple(self.open_reports(track)), settings_changed_at=changed_at,
            version=self.version, decision_point_2=dp2)
        return evaluate_gate(s, track, evidence, now)

    def advance(self, *, track: str, actor: str = "", override_reason: str | None = None,
                ) -> tuple[RolloutSettings, GateResult]:
        """Move one track to its next stage when its gate passes; raises :class:`GateRefused` otherwise.

        ``override_reason`` advances although the gate holds (audited ``rollout.override``); it
        never clears a latch (that is :meth:`resume`) nor passes an environment lock."""
        track = check_track(track)
        cur = self.load()
        ts = cur.track(track)
        self._refuse_locked(ts, [F_USE_DOMAIN, F_PERCENT], "advance the rollout")
        result = self.gate(track, cur)
        override = (override_reason or "").strip()
        if result.next is None:
            raise GateRefused(f"cannot advance the {track} track: already at 100 % (no further stage)", result)
        if ts.latched:
            raise GateRefused(f"cannot advance the {track} track: a rollback is latched ({ts.latch_reason}); "
                              f"clear it with `edge-station rollout resume --track {track} --reason ...`", result)
        extra = [AuditEntry(op=OP_ADVANCE, outcome="ok", key=track, actor=actor,
                            reason=f"{track} {result.current} -> {result.next}",
                            detail={"track": track, "gate": result.as_dict()})]
        if not result.passed:
            if not override:
                raise GateRefused(
                    f"cannot advance the {track} track from {result.current} %: " + "; ".join(result.needs), result)
            extra.append(AuditEntry(op=OP_OVERRIDE, outcome="ok", key=track, actor=actor, reason=override[:80],
                                    detail={"from": result.current, "to": result.next, "override_reason": override,
                                            "gate_needs": result.needs}))
        self._change({track_key(track, F_USE_DOMAIN): True, track_key(track, F_PERCENT): result.next,
                      track_key(track, F_STAGE_ENTERED_AT): self.wall()},
                     actor=actor, reason=f"advance {track} to {result.next} %", extra=extra)
        return self.load(), result

    # ------------------------------------------------------------ records

    def record_verification(self, passed: bool, mismatches: int, failures: int, *, actor: str = "",
                            detail: dict[str, Any] | None = None) -> None:
        record = {"at": self.wall(), "passed": passed, "mismatches": mismatches, "failures": failures,
                  "version": self.version}
        entry = AuditEntry(op=OP_VERIFY, outcome="ok" if passed else "failed", actor=actor,
                           reason=f"{mismatches} mismatches, {failures} failures", detail=detail or {})
        self._change({K_LAST_VERIFY: record}, actor=actor, reason="verification", extra=[entry])

    def record_rehearsal(self, track: str, passed: bool, checks: list[dict[str, Any]], *, actor: str = "") -> None:
        failed = [c["message"] for c in checks if c.get("status") != "pass"]
        record = {"at": self.wall(), "passed": passed, "track": track, "version": self.version, "failed": failed}
        entry = AuditEntry(op=OP_REHEARSE, outcome="ok" if passed else "failed", key=track, actor=actor,
                           reason=f"rollback rehearsal of the {track} track", detail={"checks": checks})
        self._change({K_LAST_REHEARSAL: record}, actor=actor, reason="rehearsal", extra=[entry])

    # ------------------------------------------------------------ problem reports

    def file_report(self, *, track: str, text: str, operator: str = "", camera_id: int | None = None,
                    rule_id: int | None = None) -> ProblemReport:
        """File a problem report against the current stage of ``track`` (audited; holds its gate)."""
        track = check_track(track)
        text = (text or "").strip()
        if not text:
            raise RolloutSettingsError("a problem report needs a text saying what went wrong")
        if len(text) > 4000:
            raise RolloutSettingsError(f"a problem report's text is at most 4000 characters (got {len(text)})")
        for what, v in (("camera", camera_id), ("rule", rule_id)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise RolloutSettingsError(f"the report's {what} must be a positive id (got {v!r})")
        stage = self.load().track(track).stage
        with self.store.uow() as uow:
            if camera_id is not None and uow.cameras.get(camera_id) is None:
                raise RolloutSettingsError(f"the report names camera {camera_id}, which does not exist")
            if rule_id is not None and uow.rules.get(rule_id) is None:
                raise RolloutSettingsError(f"the report names rule {rule_id}, which does not exist")
            rep = uow.reports.add(ProblemReport(track=track, stage=stage, text=text, operator=operator[:80],
                                                camera_id=camera_id, rule_id=rule_id))
            uow.audit.add(AuditEntry(op=OP_REPORT, outcome="open", key=f"report:{rep.id}", actor=operator[:80],
                                     reason=f"{track} at {stage} %", detail=report_dict(rep),
                                     at=_ts(self.wall())))
            uow.commit()
        return rep

    def list_reports(self, track: str | None = None, *, open_only: bool = False) -> list[ProblemReport]:
        if track is not None and track != "all":
            track = check_track(track)
        else:
            track = None
        with self.store.uow() as uow:
            return uow.reports.list(track, open_only=open_only)

    def resolve_report(self, report_id: int, *, by: str = "", note: str = "") -> ProblemReport:
        if not (note or "").strip():
            raise RolloutSettingsError("resolving a report needs a note (what was found or done)")
        with self.store.uow() as uow:
            cur = uow.reports.get(report_id)
            if cur is None:
                raise RolloutSettingsError(f"there is no problem report {report_id}")
            if not cur.open:
                raise RolloutSettingsError(f"problem report {report_id} is already resolved")
            rep = uow.reports.resolve(report_id, by=by[:80], resolution=note.strip())
            assert rep is not None
            uow.audit.add(AuditEntry(op=OP_REPORT_RESOLVED, outcome="resolved", key=f"report:{report_id}",
                                     actor=by[:80], reason=note.strip()[:80], detail=report_dict(rep),
                                     at=_ts(self.wall())))
            uow.commit()
        return rep

    # ------------------------------------------------------------ rollback verification

    def rollback_evidence(self, track: str, settings: RolloutSettings) -> RollbackEvidence | None:
        ts = settings.track(track)
        if not ts.latched or ts.latched_at is None:
            return None
        pops = build_populations(settings.salt, self.keys_provider())
        on = keys_on_domain(key_share(settings, pops), track)
        ops = set(TRACKS[track])
        entries = self._entries(ts.latched_at)
        # From when the running station(s) applied the latch (a rollback made by the CLI reaches a running
        # station within a second); without such a record, from the rollback itself.
        applied = [_unix(e.at) for e in entries if e.op == LATCH_APPLIED_OP and e.key == track]
        cutoff = max((a for a in applied if a is not None), default=ts.latched_at)
        domain_calls = shadow = in_flight = 0
        legacy: list[AuditEntry] = []
        for e in entries:
            at = _unix(e.at) or 0.0
            if e.op in ops:
                if e.path == DOMAIN:  # an aggregate of reads counts its calls (its ``at`` is its last call)
                    if at < cutoff:
                        in_flight += e.calls
                    else:
                        domain_calls += e.calls
                elif e.path == LEGACY:
                    legacy.append(e)
            elif e.op in (SHADOW_OP, SHADOW_MISMATCH_OP) and e.reason in ops and e.path == DOMAIN:
                if at < cutoff:
                    in_flight += 1
                else:
                    shadow += 1
        elapsed = self.wall() - ts.latched_at
        return RollbackEvidence(on, domain_calls, shadow, stats_from_audit(legacy, elapsed).path(LEGACY), elapsed,
                                in_flight=in_flight, applied_after_s=cutoff - ts.latched_at if applied else None)

    def checklist(self, track: str, settings: RolloutSettings | None = None) -> Checklist | None:
        """A track's rollback checklist, verified on the current keys and the audit log (None if no rollback)."""
        s = settings or self.load()
        ev = self.rollback_evidence(check_track(track), s)
        return rollback_checklist(s, track, ev) if ev is not None else None

    def status(self) -> Status:
        s = self.load()
        pops = build_populations(s.salt, self.keys_provider())
        share = key_share(s, pops)
        out = {}
        for name in TRACK_NAMES:
            out[name] = TrackStatus(name, s.track(name), share[name], self.gate(name, s), self.checklist(name, s),
                                    tuple(self.open_reports(name)))
        return Status(s, out)


__all__ = ["ENV_PERCENT", "ENV_USE_DOMAIN", "RolloutControl", "Status", "TrackStatus"]
