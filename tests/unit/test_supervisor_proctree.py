"""Process-tree helpers against this very process, and the heartbeat type check."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from app.supervisor import proctree
from app.supervisor.proctree import ProcRef, descendants, ppid_map, ref_of
from app.workerlink.protocol import clean_heartbeat


def test_fast_parent_map_agrees_with_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        fast = ppid_map()
        monkeypatch.setattr(proctree, "_PROC_STAT", False)
        slow = ppid_map()
        me = psutil.Process().pid
        assert child.pid in fast[me] and child.pid in slow[me]
        assert set(descendants(me, fast)) == {c.pid for c in psutil.Process().children(recursive=True)}
        assert {k: sorted(v) for k, v in fast.items() if k == me} == {k: sorted(v) for k, v in slow.items() if k == me}
    finally:
        child.kill()
        child.wait(5)


def test_procref_detects_pid_reuse() -> None:
    me = psutil.Process()
    ref = ref_of(me)
    assert ref is not None and ref.resolve() is not None
    assert ProcRef(me.pid, ref.create_time - 10).resolve() is None  # "same pid, other process"


def test_clean_heartbeat_keeps_contract_types_only() -> None:
    raw = {"type": "heartbeat", "ts": 1, "fps": "fast", "decoded": 10, "dropped": True,
           "motion": 0.5, "motion_active": 1, "source": "sideways", "last_frame_age": None,
           "width": 640, "height": 360.0, "codec": "h264", "error": 3, "extra": "x"}
    hb = clean_heartbeat(raw, prev_source="up")
    assert hb == {"type": "heartbeat", "ts": 1.0, "decoded": 10, "motion": 0.5, "source": "up",
                  "width": 640, "codec": "h264", "error": None}
    assert clean_heartbeat({"source": "down", "error": "gone"}, None)["source"] == "down"
