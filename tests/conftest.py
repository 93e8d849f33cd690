"""Shared fixtures for the whole suite.

Every test runs with Qt offscreen, a private data dir, and a check that it left
no worker process behind.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never see the environment overrides of the machine they run on.
for _var in ("USE_DOMAIN_SERVICE", "ROLLOUT_PERCENT", "EDGE_STATION_DB", "EDGE_STATION_DATA_DIR",
             "EDGE_STATION_WORKER_LAUNCHER", "EDGE_STATION_NAME", "EDGE_STATION_HEARTBEAT_INTERVAL"):
    os.environ.pop(_var, None)

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Qt messages that the offscreen platform plugin prints for every top-level window; harmless. The plugin
#: may print one after its window's test ended, in whatever test runs next on that process, so every
#: test ignores it (not only the window tests).
OFFSCREEN_NOISE = (r"This plugin does not support propagateSizeHints\(\)",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.qt_log_ignore(*OFFSCREEN_NOISE))


def _leftover_workers() -> list[psutil.Process]:
    """Processes started by this test process (or its children) that are still alive."""
    me = psutil.Process()
    found = []
    for child in me.children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _launchers_in_use(left: list[psutil.Process]) -> set[int]:
    """The worker launchers among ``left`` that a running supervisor of this process holds (a station
    kept open across a module's tests keeps its launcher: it is the station's, not the test's)."""
    try:
        if not any("zygote" in " ".join(p.cmdline()) for p in left):
            return set()
    except psutil.Error:
        pass
    from app.supervisor import Supervisor

    held = set()
    for obj in gc.get_objects():
        if isinstance(obj, Supervisor) and obj.running:
            pid = obj.launcher_pid()
            if pid is not None:
                held.add(pid)
    return held


@pytest.fixture(autouse=True)
def no_process_left_behind(request):
    """Fail a test that leaves a child process running; kill what it left."""
    yield

    def leftovers() -> list[psutil.Process]:
        left = _leftover_workers()
        held = _launchers_in_use(left) if left else set()
        return [p for p in left if p.pid not in held]

    deadline = time.monotonic() + 3.0
    left = leftovers()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = leftovers()
    if left:
        desc = ", ".join(f"{p.pid}:{' '.join(p.cmdline()[:4])}" for p in left if p.is_running())
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        pytest.fail(f"test left processes running: {desc}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def python_exe() -> str:
    return sys.executable
