"""Rollout control on the store: load and change settings, advance, roll back, verify a rollback.

Everything here works on the database alone, so the CLI (another process) and the
running station use the same code: settings changes are audited in the same
transaction as the change, and the stage gate and rollback checklist are judged
on the audit log (which the router writes for every call).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.domain.audit import AuditEntry
from app.rollout.decision import KeysProvider, build_populations, key_share, store_keys_provider
from app.rollout.errors import GateRefused, RolloutLocked, RolloutSettingsError
from app.rollout.health import Checklist, GateResult, evaluate_gate, rollback_checklist
from app.rollout.metrics import WindowStats, stats_from_audit
from app.rollout.settings import (
    ENV_PERCENT,
    ENV_USE_DOMAIN,
    K_AUTO_ROLLBACK,
    K_LAST_VERIFY,
    K_LATCH_REASON,
    K_LATCHED,
    K_LATCHED_AT,
    K_PERCENT,
    K_SALT,
    K_SHADOW_RATE,
    K_STAGE_ENTERED_AT,
    K_USE_DOMAIN,
    T_PREFIX,
    RolloutSettings,
    Thresholds,
    new_salt,
    parse_bool,
    parse_percent,
)
from app.store.uow import IntegrityError

#: how many audit entries a gate or checklist reads at most
AUDIT_SCAN_LIMIT = 500_000

OP_SETTINGS = "settings.set"
OP_ROLLBACK = "rollout.rollback"
OP_ADVANCE = "rollout.advance"
OP_VERIFY = "rollout.verify"


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True)
class Status:
    settings: RolloutSettings
    keys: dict[str, dict[str, Any]]
    gate: GateResult
    checklist: Checklist | None

    def as_dict(self) -> dict:
        return {
            "settings": self.settings.as_dict(),
            "keys": {k: {kk: vv for kk, vv in v.items() if kk != "domain_keys"} for k, v in self.keys.items()},
            "gate": self.gate.as_dict(),
            "rollback_checklist": self.checklist.as_dict() if self.checklist else None,
        }


class RolloutControl:
    def __init__(self, store, *, env: Mapping[str, str] | None = None, wall: Callable[[], float] = time.time,
                 keys_provider: KeysProvider | None = None):
        self.store = store
        self.env = os.environ if env is None else env
        self.wall = wall
        self.keys_provider = keys_provider or store_keys_provider(store)

    # ------------------------------------------------------------ reading

    def load(self) -> RolloutSettings:
        """The effective settings; creates the per-station salt on first use (audited)."""
        with self.store.uow() as uow:
            stored = {k: v for k, v in uow.settings.all().items() if k.startswith("rollout.")}
        if not stored.get(K_SALT):
            try:
                with self.store.uow() as uow:
                    uow.settings.set(K_SALT, new_salt())
                    uow.audit.add(AuditEntry(op=OP_SETTINGS, outcome="ok", key=K_SALT, actor="station",
                                             reason="created the per-station bucketing salt"))
                    uow.commit()
            except IntegrityError:
                pass  # another process created it at the same moment: use theirs
            with self.store.uow() as uow:
                stored = {k: v for k, v in uow.settings.all().items() if k.startswith("rollout.")}
        return RolloutSettings.from_stored(stored, self.env)

    def audit_stats(self, since: float, window_s: float | None = None) -> WindowStats:
        with self.store.uow() as uow:
            entries = uow.audit.recent(limit=AUDIT_SCAN_LIMIT, since=_ts(since))
        return stats_from_audit(entries, window_s if window_s is not None else max(self.wall() - since, 0.0))

    # ------------------------------------------------------------ changing

    def _change(self, values: dict[str, Any], *, actor: str, reason: str, extra: AuditEntry | None = None) -> None:
        """Write settings and one audit entry per changed key, in one transaction."""
        with self.store.uow() as uow:
            for key, new in values.items():
                old = uow.settings.get(key)
                if old == new:
                    continue
                uow.settings.set(key, new)
                uow.audit.add(AuditEntry(op=OP_SETTINGS, outcome="ok", key=key, actor=actor, reason=reason[:80],
                                         detail={"old": old, "new": new}))
            if extra is not None:
                uow.audit.add(extra)
            uow.commit()

    def _refuse_locked(self, settings: RolloutSettings, fields_: list[str], what: str) -> None:
        locked = settings.locked_fields()
        hit = [f for f in fields_ if f in locked]
        if hit:
            names = ", ".join(f"{locked[f]}={self.env.get(locked[f])}" for f in hit)
            raise RolloutLocked(f"cannot {what}: overridden by the environment ({names}); unset it first")

    def set(self, *, use_domain: object = None, percent: object = None, actor: str = "",
            reason: str = "set") -> RolloutSettings:
        """Set the master toggle and/or the percent (validated; ``use_domain=True`` clears a latch)."""
        if use_domain is None and percent is None:
            raise RolloutSettingsError("nothing to set: give the domain toggle, the percent, or both")
        use = parse_bool(use_domain, what="domain") if use_domain is not None else None
        pct = parse_percent(percent, what="percent") if percent is not None else None
        cur = self.load()
        wanted = [f for f, v in (("use_domain", use), ("percent", pct)) if v is not None]
        self._refuse_locked(cur, wanted, "change the rollout")
        values: dict[str, Any] = {}
        if use is not None:
            values[K_USE_DOMAIN] = use
        if pct is not None:
            values[K_PERCENT] = pct
        if use and cur.latched:
            values.update({K_LATCHED: False, K_LATCH_REASON: "", K_LATCHED_AT: None})
        changed = (use is not None and use != cur.stored_use_domain) or (pct is not None and pct != cur.stored_percent)
        if changed or K_LATCHED in values:
            values[K_STAGE_ENTERED_AT] = self.wall()
        self._change(values, actor=actor, reason=reason)
        return self.load()

    def set_options(self, changes: Mapping[str, object], *, actor: str = "") -> RolloutSettings:
        """Change auto-rollback, shadow rate or thresholds (names as in :class:`Thresholds`)."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "auto_rollback":
                values[K_AUTO_ROLLBACK] = parse_bool(value, what="auto_rollback")
            elif name == "shadow_rate":
                try:
                    rate = float(value)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    rate = -1.0
                if not 0.0 <= rate <= 1.0:
                    raise RolloutSettingsError(f"shadow_rate={value!r} must be a number from 0 to 1")
                values[K_SHADOW_RATE] = rate
            else:
                values[T_PREFIX + name] = Thresholds.coerce(name, value)
        self._change(values, actor=actor, reason="options")
        return self.load()

    def rollback(self, *, actor: str = "", reason: str = "manual rollback") -> RolloutSettings:
        """One step: toggle off, percent 0, latch set (the latch wins over force and environment)."""
        cur = self.load()
        now = self.wall()
        entry = AuditEntry(op=OP_ROLLBACK, outcome="ok", actor=actor, reason=reason[:80],
                           detail={"from_percent": cur.target_percent, "env_overrides": cur.overrides})
        self._change({K_USE_DOMAIN: False, K_PERCENT: 0, K_LATCHED: True, K_LATCH_REASON: reason[:200],
                      K_LATCHED_AT: now, K_STAGE_ENTERED_AT: now}, actor=actor, reason=reason, extra=entry)
        return self.load()

    def gate(self, settings: RolloutSettings | None = None) -> GateResult:
        s = settings or self.load()
        now = self.wall()
        since = s.stage_entered_at if s.stage_entered_at is not None else now
        return evaluate_gate(s, self.audit_stats(since), now)

    def advance(self, *, actor: str = "") -> tuple[RolloutSettings, GateResult]:
        """Move to the next stage when the gate passes; raises :class:`GateRefused` otherwise."""
        cur = self.load()
        self._refuse_locked(cur, ["use_domain", "percent"], "advance the rollout")
        result = self.gate(cur)
        if not result.passed:
            raise GateRefused(
                f"cannot advance from {result.current} %: " + "; ".join(result.reasons), result)
        assert result.next is not None
        entry = AuditEntry(op=OP_ADVANCE, outcome="ok", actor=actor, reason=f"{result.current} -> {result.next}",
                           detail={"gate": result.as_dict()})
        self._change({K_USE_DOMAIN: True, K_PERCENT: result.next, K_STAGE_ENTERED_AT: self.wall()},
                     actor=actor, reason=f"advance to {result.next} %", extra=entry)
        return self.load(), result

    def record_verification(self, passed: bool, mismatches: int, failures: int, *, actor: str = "",
                            detail: dict | None = None) -> None:
        record = {"at": self.wall(), "passed": passed, "mismatches": mismatches, "failures": failures}
        entry = AuditEntry(op=OP_VERIFY, outcome="ok" if passed else "failed", actor=actor,
                           reason=f"{mismatches} mismatches, {failures} failures", detail=detail or {})
        self._change({K_LAST_VERIFY: record}, actor=actor, reason="verification", extra=entry)

    # ------------------------------------------------------------ rollback verification

    def checklist(self, settings: RolloutSettings | None = None) -> Checklist | None:
        """The rollback checklist, verified on the current keys and the audit log (None if no rollback)."""
        s = settings or self.load()
        if not s.latched or s.latched_at is None:
            return None
        pops = build_populations(s.salt, self.keys_provider())
        on = sum(v["domain"] for v in key_share(s, pops).values())
        elapsed = self.wall() - s.latched_at
        return rollback_checklist(s, on, self.audit_stats(s.latched_at, window_s=elapsed), elapsed)

    def status(self) -> Status:
        s = self.load()
        pops = build_populations(s.salt, self.keys_provider())
        return Status(s, key_share(s, pops), self.gate(s), self.checklist(s))


__all__ = ["ENV_PERCENT", "ENV_USE_DOMAIN", "RolloutControl", "Status"]
