"""Starting a worker process and ending it (with its process group and descendants).

Called on the supervisor thread only: the workers' PR_SET_PDEATHSIG fires when the
*spawning thread* ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from app.supervisor.evidence import evidence_dir
from app.supervisor.fdreserve import FdReserve, is_transient_spawn_error
from app.supervisor.launcher import ForkedWorker, LauncherClient, LauncherUnavailable
from app.supervisor.model import ProcessStats, SpawnError, WorkerSpec
from app.supervisor.process import WorkerHandle, WorkerProcess
from app.supervisor.proctree import (
    CAMERA_ENV,
    INSTANCE_ENV,
    MARKER_ENV,
    OWNER_ENV,
    PARENT_ENV,
    ProcRef,
    descendants,
    ppid_map,
    ref_of,
    signal_group,
    signal_refs,
)
from app.workerlink.launch import worker_command
from app.workerlink.protocol import MAX_SOURCE_BYTES, RunArgs, run_argv

__all__ = ["HAS_PIDFD", "Spawner", "begin_stop", "default_worker_command", "has_exited", "kill_tree"]

HAS_PIDFD = hasattr(os, "pidfd_open")


def default_worker_command() -> list[str]:
    return list(worker_command())


def has_exited(pid: int) -> bool:
    """Whether our child has exited, without reaping it (its pgid stays ours until reaped)."""
    if not hasattr(os, "waitid"):
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True
    except OSError:
        return False


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


class Spawner:
    """Builds a worker's command line and environment and starts it."""

    def __init__(self, run_dir: Path, preview_dir: Path, owner: str, heartbeat_interval: float,
                 clock: Callable[[], float], log_warning: Callable[[str], None]) -> None:
        self.run_dir = run_dir
        self.preview_dir = preview_dir
        self.owner = owner
        self.heartbeat_interval = heartbeat_interval
        self.clock = clock
        self.log_warning = log_warning
        #: seconds of packets each worker keeps for clips (0: none); applies at the next start
        self.preroll_seconds = 10.0
        self.fd_reserve: FdReserve | None = None
        #: forks the default workers when set (app.supervisor.launcher); None: every worker by exec
        self.launcher: LauncherClient | None = None

    def preview_file(self, camera_id: int) -> Path:
        return self.preview_dir / f"cam-{camera_id}.preview"

    def argv(self, spec: WorkerSpec, preview: Path | None) -> list[str]:
        cmd = list(spec.command) if spec.command else default_worker_command()
        # The source (it may hold a camera password) goes to the worker on its stdin,
        # never on the command line that every local user can read.
        evidence = self._evidence_dir(spec.camera_id)
        args = RunArgs(
            camera_id=spec.camera_id, loop=spec.loop, max_fps=spec.max_fps,
            preview=None if preview is None else str(preview),
            motion_threshold=spec.motion_threshold, stall_timeout=spec.stall_timeout,
            heartbeat_interval=self.heartbeat_interval,
            evidence_dir=None if evidence is None else str(evidence), preroll=self.preroll_seconds,
        )
        return [*cmd, *run_argv(args), *spec.extra_args]

    def _evidence_dir(self, camera_id: int) -> Path | None:
        directory = evidence_dir(self.run_dir, camera_id)
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for stale in (*directory.glob("*.taken"), *directory.glob("*.part")):  # a killed worker's leftovers
                stale.unlink(missing_ok=True)
        except OSError as exc:
            self.log_warning(f"camera {camera_id}: no evidence directory {directory}: {exc}")
            return None
        return directory

    def spawn(self, spec: WorkerSpec) -> WorkerProcess:
        """Start the worker of ``spec`` (raises SpawnError; ``transient`` for resource exhaustion).

        The default worker is forked by the worker launcher when there is one
        (``app.supervisor.launcher``); a custom ``spec.command``, a launcher that is not
        available, or a system without pidfds start it by exec."""
        preview = self.preview_file(spec.camera_id)
        with contextlib.suppress(FileNotFoundError):
            preview.unlink()
        argv = self.argv(spec, preview)
        instance = secrets.token_hex(8)
        markers = {
            MARKER_ENV: "1",
            OWNER_ENV: self.owner,
            INSTANCE_ENV: instance,
            CAMERA_ENV: str(spec.camera_id),
            PARENT_ENV: str(os.getpid()),
        }
        source = spec.source.encode("utf-8")
        if len(source) >= MAX_SOURCE_BYTES or b"\n" in source:
            raise SpawnError(f"camera {spec.camera_id}: the source must be one line under "
                             f"{MAX_SOURCE_BYTES} bytes")
        reserve = self.fd_reserve or FdReserve(0)
        handle: WorkerHandle | None = None
        forked = False
        with reserve.opened():  # a full descriptor table still has room for this spawn
            if self.launcher is not None and not spec.command and HAS_PIDFD:
                prefix = len(default_worker_command())
                handle = self._fork(spec, argv[prefix:], markers)
                forked = handle is not None
            if handle is None:
                handle = self._exec(spec, argv, markers)
            pid = handle.pid
            pidfd: int | None = None
            if HAS_PIDFD:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    pidfd = None  # exits are then polled
            if isinstance(handle, ForkedWorker):
                handle.pidfd = pidfd
        assert handle.stdin is not None
        try:  # a line far below the pipe's buffer: never blocks
            handle.stdin.write(source + b"\n")
            handle.stdin.close()
        except OSError:  # it died at once; its exit is reported as usual
            with contextlib.suppress(OSError):
                handle.stdin.close()
        ps: psutil.Process | None
        try:
            ps = psutil.Process(pid)
            ref = ProcRef(pid, ps.create_time())
        except psutil.Error:
            ps = None
            ref = ProcRef(pid, time.time())
        proc = WorkerProcess(popen=handle, ref=ref, instance=instance, spawn_mono=self.clock(),
                             started_at=time.time(), preview=preview, pidfd=pidfd, forked=forked)
        if ps is not None:
            proc.sampler.prime(ps)
        proc.stats = ProcessStats(pid=pid, cpu_percent=0.0, rss_bytes=0, threads=0, children=0,
                                  at=time.time())
        assert handle.stdout is not None and handle.stderr is not None
        proc.out_fd = handle.stdout.fileno()
        proc.err_fd = handle.stderr.fileno()
        return proc

    def _exec(self, spec: WorkerSpec, argv: list[str], markers: dict[str, str]) -> WorkerHandle:
        env = dict(os.environ)
        env.update(markers)
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            raise SpawnError(f"camera {spec.camera_id}: cannot start worker {argv[0]!r}: {exc}",
                             transient=is_transient_spawn_error(exc)) from exc

    def _fork(self, spec: WorkerSpec, argv: list[str], markers: dict[str, str]) -> ForkedWorker | None:
        """The worker forked by the launcher; None if the launcher is not available (then exec)."""
        assert self.launcher is not None
        ends: list[int] = []
        try:
            for _ in range(3):
                ends.extend(os.pipe2(os.O_CLOEXEC))
        except OSError as exc:
            for fd in ends:
                os.close(fd)
            raise SpawnError(f"camera {spec.camera_id}: no pipes for the worker: {exc}",
                             transient=is_transient_spawn_error(exc)) from exc
        in_r, in_w, out_r, out_w, err_r, err_w = ends
        title = " ".join([*default_worker_command(), *argv])  # what ps shows: an exec'd worker's command line
        try:
            pid = self.launcher.spawn(argv, markers, title, f"es-cam-{spec.camera_id}", (in_r, out_w, err_w))
        except LauncherUnavailable as exc:
            for fd in ends:
                os.close(fd)
            self.log_warning(f"camera {spec.camera_id}: worker launcher unavailable ({exc}): starting it by exec")
            return None
        except OSError as exc:  # the launcher could not fork
            for fd in ends:
                os.close(fd)
            raise SpawnError(f"camera {spec.camera_id}: the worker launcher cannot fork: {exc}",
                             transient=is_transient_spawn_error(exc)) from exc
        for fd in (in_r, out_w, err_w):  # the worker has its copies now
            os.close(fd)
        return ForkedWorker(pid, self.launcher, None, open(in_w, "wb", buffering=0),
                            open(out_r, "rb", buffering=0), open(err_r, "rb", buffering=0))


def refresh_descendants(proc: WorkerProcess, pmap: dict[int, list[int]] | None = None) -> None:
    pmap = ppid_map() if pmap is None else pmap
    for pid in descendants(proc.pid, pmap):
        try:
            ref = ref_of(psutil.Process(pid))
        except psutil.Error:
            continue
        if ref is not None:
            proc.descendants.add(ref)


def begin_stop(proc: WorkerProcess, deadline: float | None,
               pmap: dict[int, list[int]] | None = None) -> None:
    """TERM the group and the descendants outside it, KILL at ``deadline``; None: KILL now."""
    refresh_descendants(proc, pmap)
    if deadline is None:
        kill_tree(proc)
        return
    outside = [r for r in proc.descendants if not _in_group(r.pid, proc.pid)]
    if not signal_group(proc.pid, signal.SIGTERM):
        # No group yet: a launcher's child between its fork and its setsid. The worker itself,
        # then (it holds TERM until its handler is in place, app.worker.zygote).
        outside.append(proc.ref)
    signal_refs(outside, signal.SIGTERM)
    # A SIGSTOPped worker only acts on TERM once continued.
    signal_group(proc.pid, signal.SIGCONT)
    signal_refs(outside, signal.SIGCONT)
    proc.stop_deadline = deadline


def kill_tree(proc: WorkerProcess) -> None:
    """SIGKILL the group (its leader is not reaped yet, so the pgid is ours) + descendants."""
    proc.killed = True
    if not proc.exited and not signal_group(proc.pid, signal.SIGKILL):
        signal_refs([proc.ref], signal.SIGKILL)  # no group yet (see begin_stop)
    signal_refs(proc.descendants, signal.SIGKILL)
