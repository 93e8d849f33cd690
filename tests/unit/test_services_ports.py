"""HeartbeatHistory (fake clock, no processes), the PNG encoder, and the layering rules of services/legacy."""

from __future__ import annotations

import ast
import io
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from app.platform.imaging import ImagingError, encode_png
from app.services.ports import HeartbeatHistory, SupervisorPort
from app.supervisor.model import SupervisorEvent, WorkerState

APP = Path(__file__).resolve().parents[2] / "app"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def hb(cid: int, **detail) -> SupervisorEvent:
    return SupervisorEvent("heartbeat", cid, WorkerState.RUNNING, {"type": "heartbeat", **detail}, 0.0)


def test_history_summarises_the_window_per_camera() -> None:
    clock = Clock()
    h = HeartbeatHistory(clock=clock)
    for t, fps, motion in ((0, 30.0, 1.0), (50, 10.0, 0.0), (55, 14.0, 0.5), (60, 12.0, None)):
        clock.t = t
        h.on_event(hb(1, fps=fps, motion=motion, decoded=t, dropped=0))
    clock.t = 60
    h.on_event(hb(2, fps=5.0))
    s = h.summary(1, 10.0)
    assert (s.samples, s.fps_min) == (3, 10.0)
    assert s.fps_avg == pytest.approx(12.0) and s.motion_avg == pytest.approx(0.25)
    assert h.summary(1, 60).samples == 4 and h.summary(2, 60).samples == 1
    clock.t = 1000
    empty = h.summary(1, 10.0)
    assert (empty.samples, empty.fps_avg, empty.fps_min, empty.motion_avg) == (0, None, None, None)
    assert h.summary(99, 10).samples == 0


def test_history_ignores_other_events_and_junk_values() -> None:
    clock = Clock()
    h = HeartbeatHistory(clock=clock)
    h.on_event(SupervisorEvent("state", 1, WorkerState.RUNNING, {"from": "starting", "to": "running"}))
    assert h.summary(1, 10).samples == 0
    h.on_event(hb(1, fps=True, motion=float("nan")))
    h.on_event(hb(1, fps="fast", motion=None))
    s = h.summary(1, 10)
    assert (s.samples, s.fps_avg, s.motion_avg) == (2, None, None)


def test_history_is_bounded_and_forgets() -> None:
    clock = Clock()
    h = HeartbeatHistory(maxlen=5, clock=clock)
    for i in range(20):
        clock.t = i
        h.record(1, {"fps": float(i)})
    got = h.samples(1, 100)
    assert len(got) == 5 and [s.fps for s in got] == [15.0, 16.0, 17.0, 18.0, 19.0]
    h.forget(1)
    assert h.samples(1, 100) == []
    with pytest.raises(ValueError):
        HeartbeatHistory(maxlen=0)


def test_history_attach_and_detach() -> None:
    subs = []

    class Sup:
        def subscribe(self, cb):
            subs.append(cb)
            return lambda: subs.remove(cb)

    h = HeartbeatHistory().attach(Sup())  # type: ignore[arg-type]
    assert len(subs) == 1
    with pytest.raises(RuntimeError):
        h.attach(Sup())  # type: ignore[arg-type]
    subs[0](hb(3, fps=1.0))
    assert h.summary(3, 60).samples == 1
    h.detach()
    h.detach()
    assert subs == []


def test_the_real_supervisor_satisfies_the_port(tmp_path: Path) -> None:
    from app.supervisor import Supervisor

    assert isinstance(Supervisor(tmp_path / "run", tmp_path / "log"), SupervisorPort)


def _decode(png: bytes) -> np.ndarray:
    with av.open(io.BytesIO(png), format="png_pipe") as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 13, 3), (360, 640, 3)])
def test_encode_png_round_trips_through_ffmpeg(shape: tuple[int, int, int]) -> None:
    img = np.random.default_rng(sum(shape)).integers(0, 256, size=shape, dtype=np.uint8)
    png = encode_png(img)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(_decode(png), img)
    assert encode_png(img) == png  # deterministic


def test_encode_png_accepts_views_and_rejects_bad_input() -> None:
    big = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    view = big[::2, 5:25]
    assert np.array_equal(_decode(encode_png(view)), view)
    raw = zlib.decompress(encode_png(view)[8 + 25 + 8:-12])
    assert len(raw) == view.shape[0] * (view.shape[1] * 3 + 1)
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ImagingError):
            encode_png(bad)


def _imports(package: Path) -> set[str]:
    found: set[str] = set()
    for py in (package.rglob("*.py") if package.is_dir() else [package]):
        for node in ast.walk(ast.parse(py.read_text(), str(py))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def test_legacy_uses_core_tables_only_and_never_the_services() -> None:
    imported = _imports(APP / "legacy")
    assert not {m for m in imported if m.startswith(("app.services", "app.store.models", "app.store.repositories",
                                                     "app.store.uow", "sqlalchemy.orm"))}
    assert "app.store.tables" in imported
    # the wording of a refusal is the domain's, shared by both paths; a snapshot goes through the port
    for pkg in ("legacy", "services"):
        mods = _imports(APP / pkg)
        assert "app.domain.refusals" in mods and "app.supervisor.evidence" not in mods, pkg


def test_core_packages_stay_qt_free() -> None:
    for pkg in ("services", "legacy"):
        bad = {m for m in _imports(APP / pkg) if m.split(".")[0] in ("PySide6", "pyqtgraph", "shiboken6")
               or m.startswith(("app.ui", "app.rollout", "app.station"))}
        assert not bad, f"app.{pkg} imports {bad}"
    # the shared encoder is a leaf: it may be imported by both paths because it imports neither
    assert {m for m in _imports(APP / "platform" / "imaging.py") if m.startswith("app")} == set()


def test_heartbeat_history_memory_is_fixed_per_camera_and_levels_off() -> None:
    """A scaled-down soak: 16 cameras, 3x the cap of heartbeats, traced allocations."""
    import tracemalloc

    from app.services.ports import HeartbeatHistory

    now = [0.0]
    maxlen = 600
    hb = {"fps": 15.0, "decoded": 1, "dropped": 0, "motion": 0.25}
    import app.services.ports as ports

    def held_by_history() -> int:
        """What the history's own module holds: other threads of a whole-suite run allocate too."""
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, ports.__file__)])
        return sum(stat.size for stat in snap.statistics("filename"))

    tracemalloc.start()
    try:
        history = HeartbeatHistory(maxlen=maxlen, clock=lambda: now[0])
        base = held_by_history()
        sizes = []
        for round_ in range(3):
            for _ in range(maxlen):
                now[0] += 1.0
                for cid in range(16):
                    history.record(cid, {**hb, "decoded": int(now[0]) * 15})
            sizes.append(held_by_history() - base)
            assert round_ >= 0
    finally:
        tracemalloc.stop()
    per_sample = sizes[0] / (16 * maxlen)
    assert per_sample <= 48, f"{per_sample:.0f} bytes a sample"  # five doubles + ring overhead
    assert sizes[2] <= sizes[0] * 1.02, sizes  # flat once allocated: no growth up to and past the cap
    got = history.samples(3, 10)
    assert [s.t for s in got] == [now[0] - 10 + i for i in range(11)]  # the window includes its start
    assert got[-1].decoded == int(now[0]) * 15 and got[-1].fps == 15.0 and got[-1].motion == 0.25
