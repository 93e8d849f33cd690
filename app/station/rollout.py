"""The rollout, per track: the window, the CLI and the API change it through these methods; each
change is validated and audited by app.rollout.control, and every view is told with a
``rollout`` event. ``track`` is "rules", "cameras" or (where it makes sense) "all"."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

from app.station.core import StationCore, StationOptions
from app.station.events import StationEvent

if TYPE_CHECKING:
    from app.rollout.control import RolloutControl
    from app.rollout.health import GateResult, HealthVerdict
    from app.rollout.rehearse import RehearsalResult
    from app.rollout.router import RolloutSnapshot
    from app.rollout.settings import RolloutSettings
    from app.rollout.verify import ScratchStation, StepProgress, VerifyReport


class RolloutMethods(StationCore):
    def _scratch(self) -> AbstractContextManager[ScratchStation]:
        """A throwaway station of this station's own type (verify and rehearse run on it)."""
        from app.station.scratch import Openable, scratch_station_of

        # this mixin is a base of Station, which takes StationOptions and opens, has parts() and closes
        return scratch_station_of(cast("Callable[[StationOptions], Openable]", type(self)))

    def _control(self) -> RolloutControl:
        control = self.parts().router.control
        assert control is not None, "a station's router always has its store's rollout control"
        return control

    def _rollout_changed(self) -> None:
        self.emit(StationEvent("rollout"))

    def rollout_settings(self) -> RolloutSettings:
        """Both tracks' settings, as the router holds them."""
        return self.parts().router.settings

    def rollout_health(self) -> HealthVerdict:
        """The router's current health verdict (its failure limit applies)."""
        return self.parts().router.current_health()

    def rollout_snapshot(self) -> RolloutSnapshot:
        """Both tracks, gates, checklists and reports.

        The gates are read from the audit log at most every two seconds (every change made through
        this station or seen in its database resets them at once)."""
        return self.parts().router.snapshot(gate_ttl=2.0)

    def rollout_set(self, *, track: str = "all", use_domain: object = None, percent: object = None,
                    reason: str = "set", override_reason: str | None = None,
                    actor: str = "operator") -> RolloutSettings:
        """Set a track's toggle/percent (raising goes through its gate, or needs ``override_reason``)."""
        s = self.parts().router.set(track=track, use_domain=use_domain, percent=percent, reason=reason,
                                    override_reason=override_reason, actor=actor)
        self._rollout_changed()
        return s

    def rollout_advance(self, *, track: str | None, override_reason: str | None = None,
                        actor: str = "operator") -> tuple[RolloutSettings, GateResult]:
        """Advance a track one stage (``None``: every track whose gate passes); ``GateRefused``
        (with the gate) when it holds and no override is given."""
        result = self.parts().router.advance(track=track, override_reason=override_reason, actor=actor)
        self._rollout_changed()
        return result

    def rollout_rollback(self, *, track: str = "all", reason: str = "manual rollback",
                         actor: str = "operator", source: str = "manual") -> dict[str, Any]:
        """Roll back a track or all (latched); returns ``{track: checklist dict}`` as verified now."""
        from app.rollout.settings import parse_tracks

        router = self.parts().router
        router.rollback(track=track, reason=reason, actor=actor, source=source)
        self._rollout_changed()
        out = {}
        for t in parse_tracks(track):
            c = router.checklist(t)
            out[t] = c.as_dict() if c is not None else None
        return out

    def rollout_resume(self, *, track: str, reason: str, actor: str = "operator") -> RolloutSettings:
        """Clear a track's rollback latch (audited with ``reason``); the track stays at 0 %."""
        s = self.parts().router.resume(track=track, reason=reason, actor=actor)
        self._rollout_changed()
        return s

    def rollout_options(self, changes: dict[str, object], *, actor: str = "operator") -> RolloutSettings:
        """Change shared options: auto_rollback, shadow_rate, canary_rate, thresholds and stage holds."""
        s = self.parts().router.set_options(changes, actor=actor)
        self._rollout_changed()
        return s

    def rollout_gate(self, track: str) -> GateResult:
        return self.parts().router.gate(track)

    # ------------------------------------------------------------ problem reports

    def rollout_reports(self, track: str | None = None, *, open_only: bool = False) -> list[dict[str, Any]]:
        from app.rollout.control import report_dict

        return [report_dict(r) for r in self._control().list_reports(track, open_only=open_only)]

    def file_report(self, *, track: str, text: str, camera_id: int | None = None, rule_id: int | None = None,
                    operator: str = "operator") -> dict[str, Any]:
        """File a problem report against the current stage of ``track`` (audited; holds its gate)."""
        from app.rollout.control import report_dict

        rep = self._control().file_report(track=track, text=text, operator=operator, camera_id=camera_id,
                                          rule_id=rule_id)
        self.parts().router.reload()
        self._rollout_changed()
        return report_dict(rep)

    def resolve_report(self, report_id: int, *, note: str, operator: str = "operator") -> dict[str, Any]:
        from app.rollout.control import report_dict

        rep = self._control().resolve_report(report_id, by=operator, note=note)
        self.parts().router.reload()
        self._rollout_changed()
        return report_dict(rep)

    # ------------------------------------------------------------ rehearsal and verification

    def rehearse_rollback(self, *, track: str = "cameras", actor: str = "operator",
                          progress: Callable[[str], None] | None = None) -> RehearsalResult:
        """``rollout rehearse``: rehearse and verify a rollback of ``track`` on a scratch station, and
        record the result here. Blocking (seconds): keep it off a GUI thread."""
        from app.rollout.rehearse import rehearse_and_record

        result = rehearse_and_record(self._scratch, self._control(), actor=actor,
                                     track=track, progress=progress)
        self.parts().router.reload()
        self._rollout_changed()
        return result

    def verify(self, *, actor: str = "operator", progress: Callable[[str], None] | None = None,
               on_step: Callable[[StepProgress], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> VerifyReport:
        """Run the verification scenario on a scratch station and record the result for the gate.

        Blocking (tens of seconds); a cancelled run raises ``VerificationCancelled`` and records nothing."""
        from app.rollout.verify import verify_scratch_and_record

        report = verify_scratch_and_record(self._scratch, self._control(), actor=actor, progress=progress,
                                           on_step=on_step, cancelled=cancelled)
        self.parts().router.reload()
        self._rollout_changed()
        return report
