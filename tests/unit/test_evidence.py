"""The packet ring's GOP bookkeeping, the evidence settings, and retention on a real SQLite store.

Packets are real ``av.Packet`` objects carrying a real H.264 stream's template (a clip written
with libx264); their timestamps are set by the test, so no clock or sleep is involved.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import pytest

from app.domain.evidence import Evidence, EvidenceSettings
from app.evidence.store import MB, DiskFloorReached, EvidenceStore
from app.store import open_store
from app.worker.packet_ring import ClipError, PacketRing, write_clip
from tests.support.clips import write_clip as make_clip

TB = Fraction(1, 1000)


@pytest.fixture(scope="module")
def h264(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip"), width=160, height=90, seconds=2, fps=10)


def _ring(h264: Path, seconds: float, **kw) -> PacketRing:
    ring = PacketRing(seconds, **kw)
    with av.open(str(h264)) as c:
        ring.reset(c.streams.video[0], codec="h264")
    return ring


def _packet(t: float, key: bool, size: int = 100) -> av.Packet:
    p = av.Packet(b"\x00" * size)
    p.pts = p.dts = round(t * 1000)
    p.time_base = TB
    p.is_keyframe = key
    return p


def _feed(ring: PacketRing, until: float, gop: float, fps: int = 10, size: int = 100) -> None:
    n = round(until * fps)
    every = round(gop * fps)
    for i in range(n):
        ring.push(_packet(i / fps, i % every == 0, size))


def test_the_ring_starts_at_a_keyframe_and_keeps_just_enough_whole_gops(h264: Path) -> None:
    ring = _ring(h264, 3.0)
    ring.push(_packet(0.0, False))  # before any keyframe: useless, dropped
    assert ring.span() == 0.0 and ring.dropped_for_key == 1
    _feed(ring, 20.0, gop=1.0)
    src = ring.open_clip(3.0)
    assert src.packets[0].key and src.packets[0].t == pytest.approx(16.0)  # the keyframe at or before 19.9 - 3
    assert src.packets[-1].t == pytest.approx(19.9) and src.note == ""
    # at most one GOP more than the pre-roll is kept
    assert 3.0 <= ring.span() < 4.0 + 1e-9
    ring.close_clip(src)


def test_gops_longer_than_the_preroll_are_kept_whole_up_to_a_bound(h264: Path) -> None:
    ring = _ring(h264, 1.0)  # max_span = 21 s by default
    _feed(ring, 9.0, gop=4.0)
    src = ring.open_clip(1.0)
    assert src.packets[0].t == pytest.approx(4.0) and src.note == ""  # the last keyframe: 4.9 s of pre-roll
    ring.close_clip(src)
    tight = _ring(h264, 1.0, max_bytes=2_500)  # 25 packets of 100 bytes: a 4 s GOP (40) outgrows it
    _feed(tight, 7.0, gop=4.0)
    assert tight.overflows >= 1 and tight.bytes <= 2_500 and tight.waiting_since is not None
    src = tight.open_clip(1.0)
    assert src.packets == [] and "no keyframe in the last 1 s" in src.note
    tight.close_clip(src)


def test_a_clip_gets_every_later_packet_once_and_ends_at_a_reset(h264: Path, tmp_path: Path) -> None:
    ring = _ring(h264, 2.0)
    _feed(ring, 5.0, gop=1.0)
    src = ring.open_clip(2.0)
    for i in range(50, 60):
        ring.push(_packet(i / 10, i % 10 == 0))
    seen = [src.feed.get_nowait().t for _ in range(10)]
    assert seen == pytest.approx([i / 10 for i in range(50, 60)])
    with av.open(str(h264)) as c:
        ring.reset(c.streams.video[0], codec="h264")  # a reconnect
    assert src.feed.get_nowait() is None


def test_a_clip_that_outgrows_its_budget_leaves_no_file(h264: Path, tmp_path: Path) -> None:
    ring = PacketRing(5.0)
    with av.open(str(h264)) as c:
        stream = c.streams.video[0]
        ring.reset(stream, codec="h264")
        for p in c.demux(stream):
            ring.push(p)
    dest = tmp_path / "c.mp4"
    with pytest.raises(ClipError, match="budget"):
        write_clip(ring.open_clip(5.0), dest, post=0.0, max_bytes=500)
    assert list(tmp_path.iterdir()) == []
    ok = write_clip(ring.open_clip(5.0), dest, post=0.0)
    assert ok.packets == 20 and stat.S_IMODE(os.stat(dest).st_mode) == 0o600 and not ok.reencoded


def test_settings_come_from_the_store_with_safe_fallbacks() -> None:
    s = EvidenceSettings.from_settings({"evidence.preroll_s": 5, "evidence.max_total_mb": -1,
                                        "evidence.enabled": "yes", "evidence.clips": False})
    assert (s.preroll_s, s.max_total_mb, s.enabled, s.clips) == (5.0, 2048.0, True, False)
    assert EvidenceSettings.from_settings({}) == EvidenceSettings()


def _add(store: EvidenceStore, camera_id: int, age_days: float, size: int, now: datetime) -> Evidence:
    path = store.new_file(camera_id, "snapshot", "manual", None, "jpg")
    path.write_bytes(b"x" * size)
    return store.record(Evidence(kind="snapshot", moment="manual", path="", bytes=0,
                                 created_at=now - timedelta(days=age_days), camera_id=camera_id,
                                 camera_name=f"cam {camera_id}"), path)


def test_retention_by_age_then_by_size_oldest_first_and_the_floor(tmp_path: Path) -> None:
    db = open_store(f"sqlite:///{tmp_path / 'station.db'}")
    try:
        store = EvidenceStore(tmp_path / "evidence", db)
        now = datetime.now(UTC)
        ancient = _add(store, 1, 40, 1000, now)
        old = _add(store, 1, 3, 600_000, now)
        mid = _add(store, 2, 2, 600_000, now)
        new = _add(store, 2, 1, 600_000, now)
        assert stat.S_IMODE(store.path_of(new).stat().st_mode) == 0o600
        assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
        settings = EvidenceSettings(max_age_days=30, max_total_mb=1.2)  # room for two of the three
        report = store.enforce(settings, now=now.timestamp())
        assert (report.by_age, report.by_size) == (1, 1)
        assert [e.id for e in store.list()] == [new.id, mid.id]
        assert not store.path_of(ancient).exists() and not store.path_of(old).exists()
        # the floor
        store.free_space = lambda _p: int(settings.min_free_mb * MB) - 1
        with pytest.raises(DiskFloorReached, match="floor"):
            store.budget(settings)
        store.free_space = lambda _p: int(settings.min_free_mb * MB) + 1234
        assert store.budget(settings) == 1234
        # leftovers: a half-written part and a file no row lists
        (store.camera_dir(2) / "x.mp4.part").write_bytes(b"half")
        stray = store.camera_dir(2) / "stray.jpg"
        stray.write_bytes(b"?")
        assert store.sweep(now=now.timestamp() + 3600) == 2 and not stray.exists()
        assert [e.id for e in store.list()] == [new.id, mid.id]
    finally:
        db.dispose()
