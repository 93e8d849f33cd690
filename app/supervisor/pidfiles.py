"""Pid files of running workers, and the reaping of a crashed run's leftovers.

One JSON file per camera in the run dir: ``worker-<camera_id>.pid`` with the pid, its
create_time and the per-spawn token. At startup the supervisor reaps what a crashed
run left: a process is killed only if its pid exists, its create_time matches the
file *and* its environment carries the worker marker; in every other case the stale
file is just deleted. Nothing else is ever killed. The worker launcher
(``app.supervisor.launcher``) has ``launcher.pid``, reaped the same way (its workers
have pid files of their own).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from app.supervisor.proctree import (
    CREATE_TIME_TOLERANCE,
    INSTANCE_ENV,
    MARKER_ENV,
    ProcRef,
    environ_of,
    find_by_env,
    ref_of,
    signal_group,
    signal_refs,
    wait_gone,
)

log = logging.getLogger(__name__)

PREFIX = "worker-"
PROBE_PREFIX = "probe-"  # a probe in flight: probe-<pid>.pid
LAUNCHER_PIDFILE = "launcher.pid"  # the worker launcher (app.supervisor.launcher), camera_id 0
SUFFIX = ".pid"


@dataclass(frozen=True)
class PidRecord:
    camera_id: int
    pid: int
    create_time: float
    instance: str
    owner: str
    started_at: float  # unix
    preview: str = ""  # the worker's shared-memory preview file, deleted when reaped


@dataclass
class ReapReport:
    killed: list[int] = field(default_factory=list)  # pids of leftovers that were killed
    kept: list[int] = field(default_factory=list)  # pids named in a file but not ours: untouched
    removed_files: list[str] = field(default_factory=list)


def pidfile_path(run_dir: Path, camera_id: int) -> Path:
    return run_dir / f"{PREFIX}{camera_id}{SUFFIX}"


def write_pidfile(run_dir: Path, record: PidRecord) -> Path:
    path = pidfile_path(run_dir, record.camera_id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_probe_pidfile(run_dir: Path, record: PidRecord) -> Path:
    path = run_dir / f"{PROBE_PREFIX}{record.pid}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_launcher_pidfile(run_dir: Path, record: PidRecord) -> Path:
    path = run_dir / LAUNCHER_PIDFILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def remove_pidfile(run_dir: Path, camera_id: int) -> None:
    try:
        pidfile_path(run_dir, camera_id).unlink()
    except FileNotFoundError:
        pass


def read_pidfile(path: Path) -> PidRecord | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(
            camera_id=int(data["camera_id"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            instance=str(data.get("instance", "")),
            owner=str(data.get("owner", "")),
            started_at=float(data.get("started_at", 0.0)),
            preview=str(data.get("preview", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_our_leftover(record: PidRecord) -> psutil.Process | None:
    """The process the record names, if pid, create_time and marker all match."""
    try:
        p = psutil.Process(record.pid)
        if abs(p.create_time() - record.create_time) > CREATE_TIME_TOLERANCE:
            return None
    except psutil.Error:
        return None
    env = environ_of(p)
    if env is None or env.get(MARKER_ENV) != "1":
        return None
    if record.instance and env.get(INSTANCE_ENV) not in (None, record.instance):
        return None
    return p


def _remove_preview(path: Path) -> None:
    """Delete a crashed run's preview slot (and its folder once empty); only our own names."""
    if not (path.name.startswith("cam-") and path.suffix == ".preview"):
        return
    try:
        path.unlink()
    except OSError:
        return
    if path.parent.name.startswith("edge-station-") or path.parent.name == "preview":
        try:
            path.parent.rmdir()
        except OSError:
            pass


def reap_leftovers(run_dir: Path, kill_timeout: float = 2.0) -> ReapReport:
    """Kill the workers (and their descendants) a crashed run left behind; delete its pid files."""
    report = ReapReport()
    if not run_dir.is_dir():
        return report
    victims: list[ProcRef] = []
    groups: list[int] = []
    paths = (sorted(run_dir.glob(f"{PREFIX}*{SUFFIX}")) + sorted(run_dir.glob(f"{PROBE_PREFIX}*{SUFFIX}"))
             + sorted(run_dir.glob(LAUNCHER_PIDFILE)))
    for path in paths:
        record = read_pidfile(path)
        proc = is_our_leftover(record) if record is not None else None
        if record is not None and proc is None:
            report.kept.append(record.pid)
        if proc is not None and record is not None:
            ref = ref_of(proc)
            if ref is not None:
                victims.append(ref)
                report.killed.append(record.pid)
                # Its descendants carry the same spawn token, even the setsid ones.
                if record.instance:
                    for d in find_by_env(INSTANCE_ENV, record.instance, record.create_time):
                        dref = ref_of(d)
                        if dref is not None and dref not in victims:
                            victims.append(dref)
                try:
                    if os.getpgid(record.pid) == record.pid:
                        groups.append(record.pid)
                except OSError:
                    pass
        if record is not None and record.preview:
            _remove_preview(Path(record.preview))
        try:
            path.unlink()
            report.removed_files.append(path.name)
        except FileNotFoundError:
            pass
    if victims:
        log.warning("reaping %d leftover worker process(es) of a previous run: %s",
                    len(victims), [v.pid for v in victims])
        for g in groups:
            signal_group(g, signal.SIGTERM)
        signal_refs(victims, signal.SIGTERM)
        alive = wait_gone(victims, kill_timeout)
        if alive:
            for g in groups:
                # The leader may be gone while group members remain; only signal a
                # group whose leader we verified above (pgid cannot be reused while
                # any member lives).
                signal_group(g, signal.SIGKILL)
            signal_refs(alive, signal.SIGKILL)
            wait_gone(alive, kill_timeout)
    return report
