"""Verify, then record the result where the stage gate reads it: one use case for every way in.

``edge-station verify`` (a scratch station), ``verify --live`` (the running station, through
its API), ``rollout rehearse`` (a rollback rehearsed on a scratch station) and the window's
buttons all run some verification and record its result in the station's database
(``rollout.last_verify`` or ``rollout.last_rehearsal``, audited), which the gate of the next
stage reads. :func:`verify_and_record` is that sequence; each kind of result says how it is
recorded (:class:`GateEvidence`).

A verification that raises (cancelled, or it could not run at all) records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar


class GateRecorder(Protocol):
    """Where the gate reads verification results (:class:`~app.rollout.control.RolloutControl`)."""

    def record_verification(self, passed: bool, mismatches: int, failures: int, *, actor: str = "",
                            detail: dict[str, Any] | None = None) -> None: ...

    def record_rehearsal(self, track: str, passed: bool, checks: list[dict[str, Any]], *,
                         actor: str = "") -> None: ...


class GateEvidence(Protocol):
    """A verification result that knows how the gate records it."""

    @property
    def passed(self) -> bool: ...

    def record_to(self, recorder: GateRecorder, *, actor: str) -> None: ...


E = TypeVar("E", bound=GateEvidence)


def verify_and_record(run: Callable[[], E], recorder: GateRecorder | None, *, actor: str,
                      show: Callable[[E], None] | None = None) -> E:
    """Run ``run()``, show its result (``show``), then record it with ``recorder`` for the gate
    (``None``: not recorded). Returns the result; what ``run()`` raises goes through, unrecorded."""
    result = run()
    if show is not None:
        show(result)
    if recorder is not None:
        result.record_to(recorder, actor=actor)
    return result


class StoreRecorder:
    """A :class:`GateRecorder` for a process that does not hold the station's store open
    (``verify --live``): each record opens the store, records through
    :class:`~app.rollout.control.RolloutControl` and closes it. A store that cannot be opened
    is reported to ``unavailable`` and the record is skipped (the result shown stands)."""

    def __init__(self, open_store: Callable[[], Any], *, unavailable: Callable[[Exception], None]) -> None:
        self._open = open_store
        self._unavailable = unavailable

    def _with_control(self, record: Callable[[GateRecorder], None]) -> None:
        from app.rollout.control import RolloutControl

        try:
            store = self._open()
        except Exception as e:  # the answer shown stands; only the gate's record is missing
            self._unavailable(e)
            return
        try:
            record(RolloutControl(store))
        finally:
            store.dispose()

    def record_verification(self, passed: bool, mismatches: int, failures: int, *, actor: str = "",
                            detail: dict[str, Any] | None = None) -> None:
        self._with_control(lambda c: c.record_verification(passed, mismatches, failures, actor=actor, detail=detail))

    def record_rehearsal(self, track: str, passed: bool, checks: list[dict[str, Any]], *,
                         actor: str = "") -> None:
        self._with_control(lambda c: c.record_rehearsal(track, passed, checks, actor=actor))
