"""The worker launcher ("zygote"): one pre-imported process that forks a worker per request.

Starting a worker by exec costs about 0.2 s of CPU before it decodes anything (the
interpreter, numpy, PyAV and the worker's modules); 80 cameras on 2 cores then need
10 s of CPU for imports alone. The supervisor instead starts this process once: it
imports everything a worker needs, then for each request forks a child that becomes
the worker (``app.worker.cli.main``) without importing anything again.

    python -m app.worker.zygote --control-fd N     (frozen bundle: ``edge-station worker-zygote ...``)

The control protocol is ``app.workerlink.zygote``. The launcher is single-threaded (a
fork copies only the calling thread), reports its children's exits and reaps each once
the supervisor has released it. It
ends when the control socket closes (the supervisor stopped or died) and by
PR_SET_PDEATHSIG when the supervisor thread that started it ends; its workers follow it
by theirs. Each child, before it runs the worker's own code:

- starts a new session (its process group is its pid, as for an exec'd worker),
- puts the three descriptors it was sent on 0, 1, 2 and closes every other one,
- takes the environment the supervisor sent (the per-spawn token also goes into the
  memory /proc/<pid>/environ shows, so the station's leftover and stray handling finds
  it as it finds an exec'd worker) and a process title naming its camera,
- restores the signal dispositions a fresh interpreter has.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import select
import selectors
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from app.workerlink.protocol import EXIT_CRASH
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
)

__all__ = ["PRELOAD", "main"]

#: what a worker imports (lazily, in app.worker.cli.run_command and its capture thread)
PRELOAD = (
    "app.worker.cli", "app.worker.heartbeat", "app.worker.motion", "app.worker.preview",
    "app.worker.sources", "app.worker.capture", "app.worker.evidence", "av", "av.logging", "numpy",
)
INSTANCE_ENV = "EDGE_STATION_INSTANCE"  # app.supervisor.proctree.INSTANCE_ENV (a higher layer)
PARENT_ENV = "EDGE_STATION_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
REPLY_TIMEOUT = 30.0  # a supervisor that reads nothing for this long is not coming back
UNCLAIMED_AFTER = 30.0  # a reported exit the supervisor did not release by then is reaped anyway


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="worker-zygote")
    ap.add_argument("--control-fd", type=int, required=True)
    ap.add_argument("--title-room", default="", help="padding: room in the argument block for the "
                    "workers' titles (each forked worker shows its own command line there)")
    args = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    ctl = socket.socket(fileno=args.control_fd)
    orig = list(getattr(sys, "orig_argv", []))
    if args.title_room and orig[-2:] == ["--title-room", args.title_room]:
        _set_title(" ".join(orig[:-2]), "")  # ps shows the launcher without the padding
    _die_with_parent()
    t0 = time.perf_counter()
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    import_s = time.perf_counter() - t0
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is for the station to handle
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)
    try:
        send_message(ctl, {"op": READY, "pid": os.getpid(), "import_s": round(import_s, 4)})
    except OSError:
        return 0
    return _serve(ctl, wake_r)


def _serve(ctl: socket.socket, wake_r: int) -> int:
    children: dict[int, float | None] = {}  # pid -> when its exit was reported (None: not yet)
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    sel.register(wake_r, selectors.EVENT_READ, "sigchld")
    ctl.setblocking(False)
    while True:
        _report_exits(ctl, children)
        for key, _mask in sel.select(1.0):
            if key.data == "sigchld":
                with contextlib.suppress(OSError):
                    while os.read(wake_r, 512):
                        pass
                continue
            while True:
                try:
                    msg, fds = recv_message(ctl)
                except BlockingIOError:
                    break
                except ProtocolError as exc:
                    _log(f"bad request: {exc}")
                    continue
                except OSError as exc:
                    _log(f"control socket: {exc}")
                    return 0
                if msg is None:  # the supervisor closed its end (or died): we are done
                    return 0
                if msg.get("op") == SPAWN:
                    pid = _spawn(ctl, msg, fds)
                    if pid is not None:
                        children[pid] = None
                elif msg.get("op") == REAP:
                    for fd in fds:
                        os.close(fd)
                    _release(children, msg.get("pid"))
                else:
                    for fd in fds:
                        os.close(fd)
                    _log(f"unknown request {msg.get('op')!r}")


def _spawn(ctl: socket.socket, msg: dict[str, Any], fds: list[int]) -> int | None:
    rid = msg.get("id")
    if len(fds) != 3 or not isinstance(msg.get("argv"), list):
        for fd in fds:
            os.close(fd)
        _reply(ctl, {"op": ERROR, "id": rid, "errno": errno.EINVAL, "message": "malformed spawn request"})
        return None
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    zygote_pid = os.getpid()
    # TERM is held from before the fork until the worker has its own handler (app.worker.cli.main
    # unblocks it then): a stop that lands while the child is still becoming a worker is a clean
    # stop, not the launcher's default action (death by SIGTERM) nor lost.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        pid = os.fork()
    except OSError as exc:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fd in fds:
            os.close(fd)
        _reply(ctl, {"op": ERROR, "id": rid, "errno": exc.errno, "message": str(exc)})
        return None
    if pid == 0:  # the worker; never returns into the launcher's code
        code = EXIT_CRASH
        try:
            code = _become_worker(msg, fds, zygote_pid)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else EXIT_CRASH
        except BaseException as exc:  # noqa: BLE001 - the child must end here, whatever happened
            with contextlib.suppress(Exception):
                os.write(2, f"CRITICAL worker launch failed: {type(exc).__name__}: {exc}\n".encode())
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for fd in fds:
        os.close(fd)
    _reply(ctl, {"op": STARTED, "id": rid, "pid": pid})
    return pid


def _become_worker(msg: dict[str, Any], fds: list[int], zygote_pid: int) -> int:
    os.setsid()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL if sig == signal.SIGCHLD else signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, _max_fd())
    env = {str(k): str(v) for k, v in (msg.get("env") or {}).items()}
    _set_instance_in_proc_environ(env.get(INSTANCE_ENV, ""))
    env[PARENT_ENV] = str(zygote_pid)  # the worker's parent (app.worker.cli watches it)
    os.environ.update(env)
    _set_title(str(msg.get("title") or ""), str(msg.get("name") or ""))
    argv = [str(a) for a in msg["argv"]]
    sys.argv = [sys.argv[0], *argv]
    from app.worker.cli import main as worker_main

    return worker_main(argv)


def _report_exits(ctl: socket.socket, children: dict[int, float | None]) -> None:
    """Report each child that exited, without reaping it: the zombie keeps its pid, so its
    process group id cannot be reused while the supervisor may still signal the group. What
    is left of the group is killed first; the supervisor's ``reap`` (or UNCLAIMED_AFTER)
    reaps it."""
    now = time.monotonic()
    for pid, reported in list(children.items()):
        if reported is not None:
            if now - reported > UNCLAIMED_AFTER:
                _release(children, pid)
            continue
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            children.pop(pid, None)
            continue
        if info is None:
            continue
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        children[pid] = now
        exited = info.si_code == os.CLD_EXITED
        _reply(ctl, {"op": EXITED, "pid": pid, "rc": info.si_status if exited else -info.si_status})


def _release(children: dict[int, float | None], pid: object) -> None:
    if not isinstance(pid, int) or children.get(pid) is None:
        return  # unknown, or still running: never reap a live child on request
    children.pop(pid, None)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _reply(ctl: socket.socket, message: dict[str, Any]) -> None:
    deadline = time.monotonic() + REPLY_TIMEOUT
    while True:
        try:
            send_message(ctl, message)
            return
        except BlockingIOError:  # the supervisor is slow to read: wait for room
            if time.monotonic() >= deadline:
                break
            select.select([], [ctl], [], 0.5)
        except OSError:
            return  # the supervisor is gone; its end of file ends us
    _log(f"could not report {message} within {REPLY_TIMEOUT:g} s")


def _die_with_parent() -> None:
    expected = os.environ.get(PARENT_ENV, "")
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected.isdigit() and os.getppid() != int(expected):  # the station died before we got here
        os._exit(EXIT_CRASH)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


def _proc_stat_fields() -> list[bytes] | None:
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].split()


def _set_instance_in_proc_environ(token: str) -> None:
    """Write ``token`` over the launcher's own per-spawn token in the environment block the
    kernel shows as /proc/<pid>/environ (same length: the station's tokens are 16 hex digits).
    A fork keeps its parent's block, and the station identifies its workers and their
    strays by that token; os.environ (for what the worker starts) is set separately."""
    fields = _proc_stat_fields()
    # After "pid (comm) ", field 3 (state) is index 0: env_start/env_end are fields 50/51.
    if fields is None or len(fields) < 49 or not token:
        return
    try:
        env_start, env_end = int(fields[47]), int(fields[48])
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except (OSError, ValueError):
        return
    key = INSTANCE_ENV.encode() + b"="
    if block.startswith(key):
        start = len(key)
    else:
        at = block.find(b"\0" + key)
        if at < 0:
            return
        start = at + 1 + len(key)
    end = block.find(b"\0", start)
    new = token.encode("ascii", "replace")
    if end - start != len(new) or env_start + end > env_end:
        return
    ctypes.memmove(env_start + start, new, len(new))


def _set_title(title: str, name: str) -> None:
    """Name the process after its camera in ps/top: comm (PR_SET_NAME) and the command line
    (written over the launcher's own argument block, cut to its length)."""
    if not sys.platform.startswith("linux"):
        return
    if name:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode("utf-8", "replace")[:15]), 0, 0, 0)
    if not title:
        return
    fields = _proc_stat_fields()
    if fields is None or len(fields) < 47:
        return
    try:
        arg_start, arg_end = int(fields[45]), int(fields[46])
    except ValueError:
        return
    room = arg_end - arg_start
    if room <= 1:
        return
    # The setproctitle layout: the title, a NUL, and a last byte that is not NUL, which
    # tells the kernel to show /proc/<pid>/cmdline up to the first NUL (one line, words
    # split by spaces, as ps and psutil read it).
    raw = title.encode("utf-8", "replace")[:room - 2]
    ctypes.memmove(arg_start, raw + b"\0" + b" " * (room - len(raw) - 1), room)


def _log(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"worker launcher {os.getpid()}: {text}\n")
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
