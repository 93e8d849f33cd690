"""The supervisor's end of the worker launcher (``app.worker.zygote``).

One launcher per supervisor, started on the supervisor thread at the first worker spawn
that uses the default worker command (its PR_SET_PDEATHSIG, like the workers', fires
when that thread ends). A spawn through it is one request on the control socket
(``app.workerlink.zygote``) carrying the worker's three pipe ends; the launcher forks,
answers with the pid, and later reports the worker's exit status.

A worker forked by the launcher is the launcher's child, not ours: its exit is seen on
its pidfd (as for a spawned one), its status comes from the launcher's ``exited``
message (``ForkedWorker.wait``); the launcher keeps the zombie until the supervisor has
killed what is left of its group and sends ``reap`` (``ForkedWorker.release``). If the launcher dies, its workers die with it (their
parent-death signal); the supervisor sees end of file on the control socket and the
workers' pidfds, respawns the cameras at once (see ``Workers.on_launcher_died``) and
starts a new launcher for them. A launcher that fails ``MAX_FAILURES`` times within
``FAILURE_WINDOW`` seconds (or cannot be started) is given up: spawns fall back to a
plain exec for the rest of the supervisor's life. Everything here runs on the
supervisor thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

from app.supervisor.pidfiles import LAUNCHER_PIDFILE, PidRecord, write_launcher_pidfile
from app.supervisor.proctree import INSTANCE_ENV, OWNER_ENV
from app.workerlink.launch import launcher_command
from app.workerlink.zygote import (
    ERROR,
    EXITED,
    READY,
    REAP,
    SPAWN,
    STARTED,
    ProtocolError,
    recv_message,
    send_message,
    socket_pair,
)

__all__ = ["LAUNCHER_PIDFILE", "ForkedWorker", "LauncherClient", "LauncherUnavailable"]

log = logging.getLogger("app.supervisor.core")

READY_TIMEOUT = 20.0  # the launcher's imports: ~0.2 s of CPU, far longer on a loaded box
REPLY_TIMEOUT = 5.0  # a fork answers in milliseconds: a launcher this slow is hung
EXIT_TIMEOUT = 5.0  # between a worker's pidfd firing and the launcher's exit report
MAX_FAILURES = 3
TITLE_ROOM = 4096  # bytes of argument block each forked worker can show its command line in
FAILURE_WINDOW = 60.0
UNKNOWN_EXIT = -signal.SIGKILL  # the status of a worker whose launcher died (its parent-death signal)


class LauncherUnavailable(Exception):
    """No launcher to fork from (given up, or it just failed): spawn by exec instead."""


class LauncherClient:
    """Starts the launcher, sends spawn requests, collects exit reports."""

    def __init__(self, run_dir: Path, log_path: Path, env: Callable[[], Mapping[str, str]],
                 clock: Callable[[], float], on_started: Callable[[socket.socket], None],
                 on_lost: Callable[[socket.socket, int | None, str | None], None],
                 command: Sequence[str] | None = None) -> None:
        self.run_dir = run_dir
        self.log_path = log_path
        self._env = env
        self.clock = clock
        self._on_started = on_started
        self._on_lost = on_lost  # (socket, pid, why): why is None for an orderly close
        self._registered = False
        self.command = list(command) if command is not None else launcher_command()
        self.popen: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.pid: int | None = None
        self.generation = 0  # moves with every launcher started
        self.exits: dict[int, int] = {}
        self.failures: deque[float] = deque()
        self.disabled_reason: str | None = None
        self.import_s: float | None = None
        self.ready = False
        self._launch_env: dict[str, str] = {}

    # ------------------------------------------------------------------ state

    @property
    def alive(self) -> bool:
        return self.sock is not None

    def fileno(self) -> int:
        assert self.sock is not None
        return self.sock.fileno()

    # ------------------------------------------------------------------ start / stop

    def begin(self) -> None:
        """Start the launcher now without waiting for its imports (the first spawn waits for
        them, if they are not done by then); quiet if it runs, was given up or cannot start."""
        if self.sock is not None or self.disabled_reason is not None:
            return
        try:
            self._launch()
        except OSError as exc:
            self.lost(f"the worker launcher did not start: {exc}")

    def ensure(self) -> None:
        """A running launcher that has said ``ready``, or LauncherUnavailable."""
        if self.sock is not None and self.ready:
            return
        if self.disabled_reason is not None:
            raise LauncherUnavailable(self.disabled_reason)
        try:
            if self.sock is None:
                self._launch()
            self._await_ready()
        except (OSError, ProtocolError, LauncherUnavailable) as exc:
            self.lost(f"the worker launcher did not start: {exc}")
            raise LauncherUnavailable(str(exc)) from exc

    def _launch(self) -> None:
        mine, theirs = socket_pair()
        env = dict(self._env())
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_path, "ab") as err:
                self.popen = subprocess.Popen(
                    [*self.command, "--control-fd", str(theirs.fileno()), "--title-room", "." * TITLE_ROOM],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    pass_fds=(theirs.fileno(),), start_new_session=True, env=env, close_fds=True,
                )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self.sock = mine
        self.pid = self.popen.pid
        self.ready = False
        self._launch_env = env
        self.generation += 1

    def _await_ready(self) -> None:
        assert self.sock is not None
        msg = self._read_until(lambda m: m.get("op") == READY, READY_TIMEOUT, "ready")
        self.import_s = float(msg.get("import_s") or 0.0)
        self.sock.setblocking(False)
        self._write_pidfile(self._launch_env)
        log.info("worker launcher pid %s ready (imports %.2f s)", self.pid, self.import_s)
        self._on_started(self.sock)
        self._registered = True
        self.ready = True

    def failed(self, why: str) -> None:
        """Count a launcher failure; too many within the window and it is given up."""
        now = self.clock()
        self.failures.append(now)
        while self.failures and now - self.failures[0] > FAILURE_WINDOW:
            self.failures.popleft()
        if len(self.failures) >= MAX_FAILURES and self.disabled_reason is None:
            self.disabled_reason = (f"{why}; {len(self.failures)} launcher failures within "
                                    f"{FAILURE_WINDOW:g} s: workers are started by exec from now on")
            log.error("%s", self.disabled_reason)
        else:
            log.warning("%s", why)

    def lost(self, why: str) -> None:
        """The launcher failed (end of file on the control socket, a broken or hung one): it is
        killed and reaped, counted as a failure, and ``on_lost`` tells the supervisor."""
        if self.sock is None and self.popen is None:
            return
        self._close(kill=True, why=why)
        self.failed(why)

    def close(self, timeout: float = 2.0) -> None:
        """End the launcher: closing our end makes it exit; KILL if it does not within ``timeout``."""
        self._close(kill=False, timeout=timeout)

    def _close(self, kill: bool, timeout: float = 2.0, why: str | None = None) -> None:
        sock, self.sock = self.sock, None
        pid = self.pid
        if sock is not None:
            if self._registered:
                self._registered = False
                self._on_lost(sock, pid, why)
            with contextlib.suppress(OSError):
                sock.close()
        popen, self.popen = self.popen, None
        if popen is not None:
            if kill:
                with contextlib.suppress(OSError):
                    popen.kill()
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    popen.kill()
                popen.wait()
        with contextlib.suppress(OSError):
            (self.run_dir / LAUNCHER_PIDFILE).unlink()
        self.pid = None
        self.ready = False

    def _write_pidfile(self, env: Mapping[str, str]) -> None:
        assert self.pid is not None
        try:
            create_time = psutil.Process(self.pid).create_time()
        except psutil.Error:  # gone already: its end of file tells
            return
        record = PidRecord(camera_id=0, pid=self.pid, create_time=create_time,
                           instance=env.get(INSTANCE_ENV, ""), owner=env.get(OWNER_ENV, ""),
                           started_at=time.time())
        try:
            write_launcher_pidfile(self.run_dir, record)
        except OSError as exc:  # a safety net for crashes; the launcher itself is fine
            log.warning("cannot write the worker launcher's pid file in %s: %s", self.run_dir, exc)

    # ------------------------------------------------------------------ requests

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], title: str, name: str,
              fds: Sequence[int]) -> int:
        """Fork a worker; its pid. OSError (with the fork's errno) if the launcher could not
        fork, LauncherUnavailable if it is not there (or hung: it is then killed)."""
        self.ensure()
        assert self.sock is not None
        rid = f"{self.generation}-{time.monotonic_ns()}"
        try:
            self._send({"op": SPAWN, "id": rid, "argv": list(argv), "env": dict(env), "title": title,
                        "name": name}, fds)
            msg = self._read_until(lambda m: m.get("op") in (STARTED, ERROR) and m.get("id") == rid,
                                   REPLY_TIMEOUT, "the spawn answer")
        except (OSError, ProtocolError, LauncherUnavailable) as exc:
            self.lost(f"the worker launcher (pid {self.pid}) failed a spawn: {exc}")
            raise LauncherUnavailable(str(exc)) from exc
        if msg.get("op") == ERROR:
            code = int(msg.get("errno") or 0)
            raise OSError(code, str(msg.get("message") or os.strerror(code)))
        return int(msg["pid"])

    def _send(self, message: dict[str, Any], fds: Sequence[int]) -> None:
        assert self.sock is not None
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            try:
                send_message(self.sock, message, fds)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LauncherUnavailable("the launcher reads no requests") from None
                select.select([], [self.sock], [], 0.1)

    def _read_until(self, done: Callable[[dict[str, Any]], bool], timeout: float,
                    what: str) -> dict[str, Any]:
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LauncherUnavailable(f"no {what} from the worker launcher within {timeout:g} s")
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            msg = self._recv_one()
            if msg is None:
                continue
            if done(msg):
                return msg

    def _recv_one(self) -> dict[str, Any] | None:
        """One message (exit reports are filed); raises LauncherUnavailable at end of file."""
        assert self.sock is not None
        try:
            msg, fds = recv_message(self.sock)
        except BlockingIOError:
            return None
        except ProtocolError as exc:
            log.warning("worker launcher: %s", exc)
            return None
        for fd in fds:  # the launcher sends none; never keep one by accident
            os.close(fd)
        if msg is None:
            raise LauncherUnavailable("end of file on its control socket")
        if msg.get("op") == EXITED:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.exits[int(msg["pid"])] = int(msg["rc"])
        return msg

    def drain(self) -> bool:
        """Read what the launcher sent (exit reports); False once it has gone (end of file)."""
        if self.sock is None:
            return False
        try:
            while True:
                if self._recv_one() is None:
                    return True
        except (LauncherUnavailable, OSError) as exc:
            self.lost(f"worker launcher pid {self.pid} ended ({exc})")
            return False

    def release(self, pid: int) -> None:
        """Done with ``pid`` (its exit is handled, its group signalled): the launcher may reap it."""
        if self.sock is None:
            return
        with contextlib.suppress(OSError):  # not sent: the launcher reaps it on its own later
            send_message(self.sock, {"op": REAP, "pid": pid})

    def exit_status(self, pid: int, timeout: float) -> int | None:
        """The reported exit status of ``pid`` (waiting up to ``timeout`` for it); None if the
        launcher is gone without reporting it."""
        if pid in self.exits:
            return self.exits.pop(pid)
        if self.sock is None:
            return None
        deadline = time.monotonic() + timeout
        while pid not in self.exits:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("worker launcher", timeout)
            try:
                ready, _, _ = select.select([self.sock], [], [], left)
                if ready:
                    self._recv_one()
            except (LauncherUnavailable, OSError) as exc:
                self.lost(f"worker launcher pid {self.pid} ended ({exc})")
                return self.exits.pop(pid, None)
        return self.exits.pop(pid)


class ForkedWorker:
    """A worker forked by the launcher, with the part of ``subprocess.Popen`` the supervisor uses."""

    def __init__(self, pid: int, launcher: LauncherClient, pidfd: int | None,
                 stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.pid = pid
        self.launcher = launcher
        self.generation = launcher.generation
        self.pidfd = pidfd
        self.stdin: IO[bytes] | None = stdin
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = stderr
        self.returncode: int | None = None

    def _launcher_has_gone(self) -> bool:
        return not self.launcher.alive or self.launcher.generation != self.generation

    @property
    def unreaped(self) -> bool:
        """Its launcher still holds it (alive, or a zombie until ``release``): its pid and group
        id cannot have been reused."""
        return not self._launcher_has_gone()

    def release(self) -> None:
        """Let the launcher reap it (after its exit was handled)."""
        if not self._launcher_has_gone():
            self.launcher.release(self.pid)

    def _settle(self, rc: int | None) -> int:
        self.returncode = UNKNOWN_EXIT if rc is None else rc
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self.pid in self.launcher.exits:
            return self._settle(self.launcher.exits.pop(self.pid))
        if self._launcher_has_gone() and self._pidfd_ready():
            return self._settle(None)
        if not self._launcher_has_gone():
            self.launcher.drain()
            if self.pid in self.launcher.exits:
                return self._settle(self.launcher.exits.pop(self.pid))
        return None

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status (as Popen.wait); a worker whose launcher died reads as SIGKILL."""
        if self.returncode is not None:
            return self.returncode
        if self.pid in self.launcher.exits:
            return self._settle(self.launcher.exits.pop(self.pid))
        if self._launcher_has_gone():
            return self._settle(None)
        rc = self.launcher.exit_status(self.pid, EXIT_TIMEOUT if timeout is None else timeout)
        return self._settle(rc)

    def _pidfd_ready(self) -> bool:
        if self.pidfd is None:
            return True
        try:
            ready, _, _ = select.select([self.pidfd], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)
