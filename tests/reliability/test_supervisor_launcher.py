"""Workers forked by the worker launcher (app.supervisor.launcher), on real video.

A fleet reaches RUNNING with frames, each worker in its own session with its own spawn token
in /proc; kill -9 of a worker restarts it by policy; a killed or hung launcher is replaced and
every camera runs again; a launcher that cannot start falls back to exec; stop and shutdown
leave no process behind; a custom WorkerSpec.command is still exec'd.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from app.supervisor import RestartPolicy, Supervisor, WorkerSpec, WorkerState
from app.supervisor import launcher as launcher_mod
from app.supervisor.proctree import INSTANCE_ENV, OWNER_ENV
from tests.reliability.conftest import FAKE_COMMAND, Harness, running, wait_for

pytestmark = pytest.mark.slow

SOURCE = "test://moving?size=160x90&rate=5"
FLEET = 80  # the target of docs/architecture.md ("How workers are started")


def policy(**kw: object) -> RestartPolicy:
    base: dict[str, object] = dict(heartbeat_interval=0.5, heartbeat_timeout=20.0, stable_after=1.0,
                                   backoff_initial=0.2, stop_timeout=5.0, start_timeout=60.0)
    base.update(kw)
    return RestartPolicy(**base)  # type: ignore[arg-type]


def spec(camera_id: int, **kw: object) -> WorkerSpec:
    return WorkerSpec(camera_id=camera_id, name=f"cam{camera_id}", source=SOURCE, **kw)  # type: ignore[arg-type]


def with_frames(sup: Supervisor, camera_id: int, other_than: int | None = None) -> bool:
    st = sup.status(camera_id)
    return running(sup, camera_id, other_than) and (st.decoded or 0) > 0


def parent_of(pid: int) -> int:
    return psutil.Process(pid).ppid()


def launcher_gone(sup: Supervisor, run_dir: Path, pid: int) -> None:
    assert sup.launcher_pid() is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (run_dir / "launcher.pid").exists()


def test_a_fleet_of_forked_workers_runs_and_stops_without_leftovers(harness: Harness) -> None:
    sup = harness.supervisor(policy())
    for cid in range(1, FLEET + 1):
        sup.start_worker(spec(cid))
    wait_for(lambda: all(with_frames(sup, cid) for cid in range(1, FLEET + 1)), 240,
             f"{FLEET} cameras running with frames")
    zygote = sup.launcher_pid()
    assert zygote is not None
    zp = psutil.Process(zygote)
    assert zp.ppid() == os.getpid()
    assert zp.environ().get(OWNER_ENV) == harness.owner
    pids = [sup.status(cid).pid for cid in range(1, FLEET + 1)]
    assert len(set(pids)) == FLEET
    tokens = set()
    for cid, pid in zip(range(1, FLEET + 1), pids, strict=True):
        assert pid is not None
        p = psutil.Process(pid)
        assert p.ppid() == zygote  # forked, not exec'd
        assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # a session of its own, as before
        env = p.environ()  # what the kernel shows: the leftover/stray handling reads this
        assert env.get(OWNER_ENV) == harness.owner
        tokens.add(env.get(INSTANCE_ENV))
        cmd = p.cmdline()  # what an exec'd worker shows: its own arguments
        assert cmd[cmd.index("run"):cmd.index("run") + 3] == ["run", "--camera-id", str(cid)]
    assert len(tokens) == FLEET and zp.environ().get(INSTANCE_ENV) not in tokens
    wait_for(lambda: (s := sup.stats(1)) is not None and s.rss_bytes > 1_000_000, 10, "stats of a forked worker")
    done = sup.stop_worker(1)
    assert done.state == WorkerState.STOPPED and done.last_exit is not None and done.last_exit.code == 0
    run_dir = harness.tmp / "run0"
    assert (run_dir / "launcher.pid").exists()
    sup.shutdown()
    assert all(sup.status(cid).state == WorkerState.STOPPED for cid in range(1, FLEET + 1))
    assert all(sup.status(cid).last_exit.code == 0 for cid in range(2, FLEET + 1))  # type: ignore[union-attr]
    launcher_gone(sup, run_dir, zygote)
    assert not [p for p in pids if p is not None and psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_kill_9_of_a_forked_worker_restarts_it_by_policy(harness: Harness) -> None:
    sup = harness.supervisor(policy())
    sup.start_worker(spec(1))
    wait_for(lambda: with_frames(sup, 1), 60, "worker running")
    pid = sup.status(1).pid
    assert pid is not None
    zygote = parent_of(pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: with_frames(sup, 1, other_than=pid), 60, "restarted worker running")
    wait_for(lambda: not psutil.pid_exists(pid), 10, "the killed worker reaped by the launcher")
    st = sup.status(1)
    assert st.restarts == 1
    assert st.last_exit is not None and st.last_exit.signal == signal.SIGKILL  # reported by the launcher
    assert st.last_exit.code is None
    assert st.pid is not None and parent_of(st.pid) == zygote == sup.launcher_pid()
    exits = harness.recorder.of("exit", 1)
    assert len(exits) == 1 and exits[0].detail["signal"] == signal.SIGKILL


def test_a_killed_launcher_is_replaced_and_every_camera_runs_again(harness: Harness) -> None:
    sup = harness.supervisor(policy())
    n = 6
    for cid in range(1, n + 1):
        sup.start_worker(spec(cid))
    wait_for(lambda: all(with_frames(sup, c) for c in range(1, n + 1)), 60, "cameras running")
    old = {c: sup.status(c).pid for c in range(1, n + 1)}
    zygote = sup.launcher_pid()
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)
    wait_for(lambda: all(with_frames(sup, c, other_than=old[c]) for c in range(1, n + 1)), 60,
             "every camera running again")
    new_zygote = sup.launcher_pid()
    assert new_zygote is not None and new_zygote != zygote
    for c in range(1, n + 1):
        st = sup.status(c)
        assert st.pid is not None and parent_of(st.pid) == new_zygote
        assert st.restarts == 0  # not the camera's failure: no backoff, no rate limit
        assert st.last_exit is not None and "worker launcher" in st.last_exit.reason
        assert not psutil.pid_exists(old[c] or 0) or psutil.Process(old[c] or 0).status() == psutil.STATUS_ZOMBIE
        states = harness.recorder.states(c)
        assert "backoff" not in states and "failed" not in states


def test_a_hung_launcher_is_killed_and_replaced(harness: Harness) -> None:
    sup = harness.supervisor(policy())
    sup.start_worker(spec(1))
    wait_for(lambda: with_frames(sup, 1), 60, "camera 1 running")
    first = sup.status(1).pid
    zygote = sup.launcher_pid()
    assert zygote is not None and first is not None
    os.kill(zygote, signal.SIGSTOP)  # answers nothing; SIGKILL still ends it
    st = sup.start_worker(spec(2))  # waits out the launcher's reply timeout, then execs
    assert st.pid is not None and parent_of(st.pid) == os.getpid()
    wait_for(lambda: with_frames(sup, 2), 60, "camera 2 running (exec'd)")
    wait_for(lambda: with_frames(sup, 1, other_than=first), 60, "camera 1 running again")
    pid1 = sup.status(1).pid
    assert pid1 is not None
    replacement = sup.launcher_pid()
    assert replacement is not None and replacement != zygote and parent_of(pid1) == replacement
    assert not psutil.pid_exists(zygote) or psutil.Process(zygote).status() == psutil.STATUS_ZOMBIE


def test_a_launcher_that_cannot_start_falls_back_to_exec(harness: Harness, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(launcher_mod, "launcher_command", lambda: [sys.executable, "-c", "raise SystemExit(3)"])
    caplog.set_level(logging.WARNING, logger="app.supervisor.core")
    sup = harness.supervisor(policy())
    n = launcher_mod.MAX_FAILURES + 1
    for cid in range(1, n + 1):
        st = sup.start_worker(spec(cid))
        assert st.pid is not None and parent_of(st.pid) == os.getpid()  # exec'd by the supervisor
    wait_for(lambda: all(with_frames(sup, c) for c in range(1, n + 1)), 60, "cameras running (exec'd)")
    assert sup.launcher_pid() is None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("started by exec from now on" in m for m in errors), errors


def test_a_custom_command_is_still_execd_next_to_forked_workers(harness: Harness) -> None:
    sup = harness.supervisor(policy())
    sup.start_worker(spec(1))
    sup.start_worker(WorkerSpec(camera_id=2, name="fake", source="test://moving",
                                extra_args=("--fake-journal", str(harness.tmp / "j.jsonl")),
                                command=FAKE_COMMAND))
    wait_for(lambda: with_frames(sup, 1) and running(sup, 2), 60, "both running")
    pid1, pid2 = sup.status(1).pid, sup.status(2).pid
    assert pid1 is not None and pid2 is not None
    assert parent_of(pid1) == sup.launcher_pid()
    assert parent_of(pid2) == os.getpid()
    assert str(Path(FAKE_COMMAND[1])) in psutil.Process(pid2).cmdline()


def test_spawn_launcher_option_execs_every_worker(harness: Harness) -> None:
    sup = harness.supervisor(policy(), launcher="spawn")
    sup.start_worker(spec(1))
    wait_for(lambda: with_frames(sup, 1), 60, "worker running")
    pid = sup.status(1).pid
    assert pid is not None and parent_of(pid) == os.getpid()
    assert sup.launcher_pid() is None
    with pytest.raises(ValueError):
        Supervisor(harness.tmp / "x", harness.tmp / "y", launcher="fork")


def test_the_launcher_keeps_an_exited_worker_a_zombie_until_released(tmp_path: Path) -> None:
    """Its pid and process group id stay taken until the supervisor is done signalling them."""
    import time

    from app.workerlink.protocol import EXIT_CONFIG

    client = launcher_mod.LauncherClient(
        tmp_path / "run", tmp_path / "launcher.log",
        lambda: {**os.environ, OWNER_ENV: "zombie-test", INSTANCE_ENV: "0123456789abcdef"},
        time.monotonic, lambda _sock: None, lambda _sock, _pid, _why: None)
    (tmp_path / "run").mkdir()
    fds = [os.pipe() for _ in range(3)]
    left = {fd for pair in fds for fd in pair}
    try:
        pid = client.spawn(["run", "--camera-id", "5", "--source", "gopher://nowhere/x"],
                           {INSTANCE_ENV: "fedcba9876543210"}, "python -m app.worker run --camera-id 5",
                           "es-cam-5", (fds[0][0], fds[1][1], fds[2][1]))
        for fd in (fds[0][0], fds[1][1], fds[2][1]):  # the worker has its copies
            os.close(fd)
            left.discard(fd)
        assert client.exit_status(pid, 30.0) == EXIT_CONFIG
        zombie = psutil.Process(pid)
        assert zombie.status() == psutil.STATUS_ZOMBIE and zombie.ppid() == client.pid
        assert os.getpgid(pid) == pid  # the group id is still held
        client.release(pid)
        wait_for(lambda: not psutil.pid_exists(pid), 10, "the released worker reaped")
        err = os.read(fds[2][0], 4096).decode()
        assert "configuration error" in err
    finally:
        launcher = client.pid
        client.close()
        assert launcher is not None and not psutil.pid_exists(launcher)
        for fd in left:
            os.close(fd)
