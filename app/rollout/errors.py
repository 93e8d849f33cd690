"""The rollout package's one exception hierarchy."""

from __future__ import annotations


class RolloutError(Exception):
    """Base of every error raised by ``app.rollout``; the message says what and where."""


class RolloutSettingsError(RolloutError, ValueError):
    """A rollout setting or environment override has a value that cannot be used."""


class RolloutLocked(RolloutError):
    """A setting cannot be changed here because an environment variable overrides it."""


class GateRefused(RolloutError):
    """``advance`` was refused: the stage gate did not pass (``result`` lists every item)."""

    def __init__(self, message: str, result: object):
        super().__init__(message)
        self.result = result


class VerificationError(RolloutError):
    """The verification scenario could not run at all (scratch station not buildable, ...)."""


class VerificationCancelled(VerificationError):
    """The operator cancelled a verification between two steps: nothing is recorded for the gate."""
