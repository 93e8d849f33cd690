"""File descriptors kept back for supervision.

Everything in the station shares one descriptor table: a flood of API connections,
an FFmpeg leak or a plug-in that forgets to close files can use it up, and then the
supervisor cannot spawn the worker that just crashed ("Too many open files").

Two defences, both cheap:

* :func:`raise_nofile_limit` lifts the soft ``RLIMIT_NOFILE`` toward the hard limit
  at start (systemd services get a soft limit of 1,024 and a much larger hard one).
* :class:`FdReserve` holds a few descriptors open on ``/dev/null`` and lets go of
  them for exactly one spawn, so a full table still leaves room for the worker's
  pipes and pidfd; the reserve is taken back right after.

A spawn that fails anyway with a transient error (:data:`TRANSIENT_SPAWN_ERRNOS`)
is retried with the normal backoff instead of marking the camera FAILED.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator

try:
    import resource
except ImportError:  # not POSIX
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Enough for one spawn: stdin/stdout/stderr pipes (6), subprocess's error pipe (2),
# the pidfd (1), and a few for psutil reads and the pid file.
DEFAULT_RESERVE = 16
# Where the soft limit is raised to at most: select()-based code elsewhere breaks
# above FD_SETSIZE only if it uses such descriptors; 65,536 is what systemd's
# LimitNOFILE documentation suggests for services that need many.
DEFAULT_NOFILE_TARGET = 65536

TRANSIENT_SPAWN_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM})


def is_transient_spawn_error(exc: BaseException) -> bool:
    """Resource exhaustion that may clear by itself (retry later), not a broken command."""
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_SPAWN_ERRNOS


def raise_nofile_limit(target: int = DEFAULT_NOFILE_TARGET) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to min(hard, target); returns (soft, hard) afterwards."""
    if resource is None:
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, want, exc)
    return soft, hard


class FdReserve:
    """A handful of descriptors held open so that one spawn always finds room.

    Only the supervisor thread uses it (no lock needed).
    """

    def __init__(self, size: int = DEFAULT_RESERVE) -> None:
        self.size = size
        self._fds: list[int] = []
        self.refill()

    @property
    def held(self) -> int:
        return len(self._fds)

    def refill(self) -> int:
        """Take descriptors back up to ``size`` (as many as the table allows)."""
        while len(self._fds) < self.size:
            try:
                self._fds.append(os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
            except OSError:
                break
        return len(self._fds)

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """Let go of the reserve for the body (one spawn), then take it back."""
        self.release()
        try:
            yield
        finally:
            if self.refill() < self.size:
                log.warning("the file-descriptor reserve holds %d of %d: the open-files limit is "
                            "nearly reached", self.held, self.size)

    def close(self) -> None:
        self.release()
        self.size = 0
