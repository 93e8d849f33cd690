"""The worker launcher's control protocol (supervisor <-> launcher).

The launcher (``app.worker.zygote``) is one process per supervisor that has imported
everything a worker needs and forks a worker for each request. Both ends talk over one
``AF_UNIX``/``SOCK_SEQPACKET`` socket pair: one JSON object per message (message
boundaries are kept), a worker's three stdio descriptors riding along a spawn request as
``SCM_RIGHTS``. See docs/architecture.md ("How workers are started").

Messages (``op``):

- launcher -> supervisor ``ready`` ``{pid, import_s}``: imports done, requests welcome;
- supervisor -> launcher ``spawn`` ``{id, argv, env, title}`` + fds (stdin, stdout,
  stderr of the worker): fork one worker that runs ``app.worker.cli.main(argv)`` with
  ``env`` added to its environment;
- launcher -> supervisor ``started`` ``{id, pid}`` or ``error`` ``{id, errno, message}``;
- launcher -> supervisor ``exited`` ``{pid, rc}``: a worker ended (``rc`` as
  ``subprocess``: the exit code, or minus the signal number). The launcher has killed what
  is left of its process group and keeps the zombie, so neither the pid nor the group id
  can be reused while the supervisor may still signal them;
- supervisor -> launcher ``reap`` ``{pid}``: done with that worker: reap it (the order the
  supervisor keeps for the workers it spawns itself: kill the group, then reap).

End of file on the socket ends the launcher (its workers follow by their parent-death
signal); the supervisor reads end of file as the launcher's death.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

__all__ = [
    "EXITED",
    "FDS_PER_SPAWN",
    "MAX_MESSAGE",
    "READY",
    "REAP",
    "SPAWN",
    "STARTED",
    "ERROR",
    "ProtocolError",
    "recv_message",
    "send_message",
    "socket_pair",
]

READY = "ready"
SPAWN = "spawn"
REAP = "reap"
STARTED = "started"
ERROR = "error"
EXITED = "exited"

FDS_PER_SPAWN = 3  # the worker's stdin, stdout, stderr
MAX_MESSAGE = 1 << 18  # argv + env + title of one worker: far less (the source goes on stdin)


class ProtocolError(Exception):
    """A message that cannot be read (cut, not JSON, not an object)."""


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(supervisor end, launcher end); both close-on-exec (the launcher's end is passed on purpose)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return a, b


def send_message(sock: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(data)} bytes is over {MAX_MESSAGE}")
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def recv_message(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors it carried; (None, []) at end of file.

    Raises BlockingIOError on a non-blocking socket with nothing to read. Descriptors
    arrive close-on-exec; on a bad message they are closed before ProtocolError.
    """
    data, fds, flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, FDS_PER_SPAWN,
                                              getattr(socket, "MSG_CMSG_CLOEXEC", 0))
    if not data and not fds:
        return None, []
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ProtocolError("message or descriptors cut")
        obj = json.loads(data.decode("utf-8"))
        if not isinstance(obj, dict):
            raise ProtocolError("message is not an object")
    except (ProtocolError, ValueError) as exc:
        for fd in fds:
            os.close(fd)
        raise ProtocolError(str(exc)) from exc
    return obj, list(fds)
