"""Ring series, the registry, sliding sketches and counters."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.metrics import (
    BadSeries,
    MetricsRegistry,
    RingSeries,
    SketchError,
    SlidingCounter,
    SlidingSketch,
)

T0 = 1_800_000_000


def test_ring_keeps_the_last_capacity_seconds() -> None:
    s = RingSeries("fps", (), capacity=60)
    for i in range(150):
        s.record(float(i), T0 + i)
    ts, vals = s.window(60, T0 + 149)
    assert ts.tolist() == [float(T0 + i) for i in range(90, 150)]
    assert vals.tolist() == [float(i) for i in range(90, 150)]
    # Asking for more than the capacity gives the capacity.
    assert s.window(1000, T0 + 149)[1].size == 60
    # Older than the window: gone, even though the slot was reused.
    assert s.between(T0, T0 + 10).size == 0
    assert s.between(T0 + 100, T0 + 110).tolist() == [float(i) for i in range(100, 110)]


def test_ring_gaps_and_same_second_overwrite() -> None:
    s = RingSeries("fps", (), capacity=3600)
    s.record(1.0, T0 + 0.2)
    s.record(2.0, T0 + 0.7)  # same second: replaces
    s.record(5.0, T0 + 10)
    ts, vals = s.window(30, T0 + 20)
    assert ts.tolist() == [T0, T0 + 10]
    assert vals.tolist() == [2.0, 5.0]
    assert (s.last_ts, s.last_value) == (T0 + 10, 5.0)


def test_registry_latest_window_and_labels() -> None:
    now = [float(T0)]
    reg = MetricsRegistry(clock=lambda: now[0])
    reg.record("fps", 24.0, {"camera": 1})
    reg.record("fps", 12.0, {"camera": 2})
    reg.record("cpu_percent", 50.0)
    assert reg.latest("fps", {"camera": 1}) == 24.0
    assert reg.latest("fps", {"camera": "2"}) == 12.0  # label values are strings
    assert reg.latest("fps", {"camera": 3}) is None
    assert reg.latest("cpu_percent") == 50.0
    now[0] += 10
    assert reg.latest("fps", {"camera": 1}, max_age=5) is None
    assert reg.latest("fps", {"camera": 1}, max_age=15) == 24.0
    for i in range(5):
        reg.record("fps", float(i), {"camera": 1}, ts=now[0] + i)
    ts, vals = reg.window("fps", {"camera": 1}, seconds=3, now=now[0] + 4)
    assert vals.tolist() == [2.0, 3.0, 4.0]
    assert reg.label_values("fps", "camera") == ["1", "2"]
    assert reg.names() == ["cpu_percent", "fps"]
    t, v = reg.window("nothing", None, 60)
    assert t.size == 0 and v.size == 0
    assert reg.forget(camera=1) == 1
    assert reg.latest("fps", {"camera": 1}) is None
    assert reg.latest("fps", {"camera": 2}) == 12.0


def test_registry_rejects_bad_names() -> None:
    reg = MetricsRegistry()
    with pytest.raises(BadSeries, match="series name"):
        reg.record("bad name", 1.0)
    with pytest.raises(BadSeries, match="label"):
        reg.record("fps", 1.0, {"camera": "a,b"})
    assert reg.keys() == []


def test_registry_concurrent_writers_and_readers() -> None:
    reg = MetricsRegistry()
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(cam: int) -> None:
        i = 0
        while not stop.is_set() and i < 20_000:
            reg.record("fps", float(i % 30), {"camera": cam}, ts=T0 + i % 3600)
            i += 1

    def read() -> None:
        try:
            while not stop.is_set():
                for cam in range(4):
                    t, v = reg.window("fps", {"camera": cam}, 3600, now=T0 + 3599)
                    assert t.size == v.size
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(c,)) for c in range(4)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads[:4]:
        t.join(30)
    stop.set()
    threads[4].join(30)
    assert not errors
    assert reg.writes == 80_000


def test_sliding_sketch_quantiles_match_numpy() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=2.0, sigma=0.6, size=5000)
    sk = SlidingSketch(window=60, slices=6, relative_accuracy=0.01)
    for i, v in enumerate(values):
        sk.add(v, at=100 + i * 0.01)  # all within 50 s
    at = 100 + 50
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(values, q))
        got = sk.quantile(q, at=at)
        assert got == pytest.approx(exact, rel=0.03)
    assert sk.count(at=at) == 5000
    qs = sk.quantiles(at=at)
    assert set(qs) == {0.5, 0.95, 0.99}


def test_sliding_sketch_forgets_old_slices() -> None:
    sk = SlidingSketch(window=60, slices=6)  # 10 s slices
    for _ in range(100):
        sk.add(1000.0, at=5)  # slice 0
    for _ in range(100):
        sk.add(1.0, at=35)  # slice 3
    assert sk.count(at=40) == 200
    assert sk.quantile(0.99, at=40) == pytest.approx(1000.0, rel=0.02)
    # At 60 the window covers slices 1..6: slice 0 has slid out.
    assert sk.count(at=60) == 100
    assert sk.quantile(0.99, at=60) == pytest.approx(1.0, rel=0.02)
    assert sk.quantile(0.5, at=200) is None
    assert sk.mean(at=200) is None
    # A late value older than a reused slot is dropped, not mixed in.
    sk.add(5.0, at=100)  # slice 10 -> slot 4
    sk.add(7.0, at=45)  # slice 4 -> slot 4, older: ignored
    assert sk.count(at=100) == 1
    with pytest.raises(SketchError):
        sk.quantile(1.5)
    with pytest.raises(SketchError):
        SlidingSketch(window=0)


def test_sliding_counter() -> None:
    c = SlidingCounter(window=10, slices=5)
    c.add(1, at=0)
    c.add(2, at=3)
    c.add(3, at=9)
    assert c.total(at=9) == 6
    assert c.total(at=10) == 5  # slice [0, 2) left
    assert c.total(at=12) == 3  # slice [2, 4) left too
    assert c.total(at=30) == 0
