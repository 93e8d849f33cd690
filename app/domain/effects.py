"""The call context's side-effect mark: how an implementation says "from here on, something changed".

The rollout router opens a :func:`call_effects` context around every call of the domain
path; the domain services call :func:`mark_side_effect` just before they spawn or signal a
worker or commit a transaction. A failure after a mark is never retried on the other path:
the router reports it as a :class:`~app.domain.operations.SideEffectFailure` naming what was
marked. Outside a context (a direct call, a test) marking does nothing.

It is a context variable so the thirteen operations keep their one-argument signatures, and
so the domain services need nothing from the rollout package (layers point down).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token


class CallEffects:
    """The side effects one call marked, in order (``"spawn: the worker of camera 3"``)."""

    __slots__ = ("marks",)

    def __init__(self) -> None:
        self.marks: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.marks)


_current: ContextVar[CallEffects | None] = ContextVar("edge_station_call_effects", default=None)


def mark_side_effect(what: str) -> None:
    """Record that the running call is about to change something (``"<kind>: <what>"``)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.marks.append(what)


def begin_call() -> tuple[CallEffects, Token[CallEffects | None]]:
    """A fresh mark for one call (the router's hot path: cheaper than a context manager);
    hand the token to :func:`end_call` when the call is over."""
    ctx = CallEffects()
    return ctx, _current.set(ctx)


def end_call(token: Token[CallEffects | None]) -> None:
    _current.reset(token)


@contextmanager
def call_effects() -> Iterator[CallEffects]:
    """A fresh mark for one call; yields the :class:`CallEffects` the call fills in."""
    ctx, token = begin_call()
    try:
        yield ctx
    finally:
        end_call(token)
