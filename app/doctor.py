"""``edge-station doctor``: can this machine run the station? Each check says what it found."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from app.paths import PathError, StationPaths

PREVIEW_SLOTS_WANTED = 16


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def self_command() -> list[str]:
    """argv prefix that runs this app again (the frozen bundle is its own interpreter)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "app"]


def check_python() -> Check:
    v = sys.version_info
    return Check("python", v >= (3, 11), f"{sys.implementation.name} {v.major}.{v.minor}.{v.micro}")


def check_data_dir(paths: StationPaths) -> Check:
    try:
        paths.ensure()
    except PathError as e:
        return Check("data dir", False, str(e))
    free = shutil.disk_usage(paths.data_dir).free
    if free < 1 << 20:
        return Check("data dir", False, f"{paths.data_dir}: disk full, {free} bytes free (reads work, nothing "
                                        "can be written: free some space)")
    return Check("data dir", True, f"{paths.data_dir} is writable, {free / 2**30:.1f} GiB free")


def check_database(paths: StationPaths) -> Check:
    from app.store.db import (
        StoreError,
        check_sqlite_file,
        current_revision,
        head_revision,
        make_engine,
        redact_url,
    )

    try:
        engine = make_engine(paths.db_url)
    except StoreError as e:
        return Check("database", False, str(e))
    try:
        check_sqlite_file(engine)  # an empty file, not SQLite, or PRAGMA quick_check finds damage
        current = current_revision(engine)
    except StoreError as e:
        return Check("database", False, str(e))
    except Exception as e:  # noqa: BLE001 - any driver error is the finding
        return Check("database", False, f"cannot open {redact_url(paths.db_url)}: {e}")
    finally:
        engine.dispose()
    head = head_revision()
    where = redact_url(paths.db_url)
    if current == head:
        return Check("database", True, f"{where} is at schema {head} (current)")
    if current is None:
        return Check("database", False, f"{where} has no schema yet: run 'edge-station migrate' or start the station once")
    return Check("database", False, f"{where} is at schema {current}, this app needs {head}: run 'edge-station migrate'")


def check_pyav() -> Check:
    try:
        import av
    except ImportError as e:
        return Check("video (PyAV)", False, f"PyAV is not installed: {e}")
    missing = [c for c in ("h264", "hevc", "mjpeg", "png") if c not in av.codecs_available]
    detail = f"PyAV {av.__version__}, FFmpeg {'.'.join(map(str, av.library_versions['libavcodec']))} (libavcodec)"
    if missing:
        return Check("video (PyAV)", False, f"{detail}; missing codecs: {', '.join(missing)}")
    return Check("video (PyAV)", True, f"{detail}; h264, hevc, mjpeg decoders present")


def check_lavfi() -> Check:
    try:
        import av

        with av.open("testsrc2=size=64x36:rate=5", format="lavfi") as c:
            frame = next(c.decode(video=0))
        return Check("test sources (lavfi)", True, f"decoded a {frame.width}x{frame.height} test frame")
    except Exception as e:  # noqa: BLE001
        return Check("test sources (lavfi)", False, f"cannot open an FFmpeg lavfi test source: {e}")


def check_shared_memory(paths: StationPaths) -> Check:
    from app.worker.preview import SLOT_SIZE

    where = "/dev/shm" if os.path.isdir("/dev/shm") else str(paths.run_dir)
    try:
        free = shutil.disk_usage(where).free
    except OSError as e:
        return Check("shared memory", False, f"cannot read {where}: {e}")
    need = SLOT_SIZE * PREVIEW_SLOTS_WANTED
    ok = free >= need
    detail = f"{where}: {free / 2**20:.0f} MiB free, {PREVIEW_SLOTS_WANTED} preview slots need {need / 2**20:.0f} MiB"
    return Check("shared memory", ok, detail if ok else detail + " (enlarge /dev/shm)")


def check_qt() -> Check:
    """Start Qt in a child process: a missing platform plugin aborts the process that tries."""
    try:
        out = subprocess.run(
            [*self_command(), "_qtcheck"], capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("Qt platform", False, f"could not start the Qt check: {e}")
    if out.returncode == 0:
        return Check("Qt platform", True, out.stdout.strip())
    err = (out.stderr.strip().splitlines() or ["no output"])[-1]
    hint = "" if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else \
        " (no DISPLAY: run under a desktop session, xvfb-run, or set QT_QPA_PLATFORM=offscreen)"
    return Check("Qt platform", False, f"Qt cannot start: {err}{hint}")


def run_checks(paths: StationPaths) -> Iterator[Check]:
    yield check_python()
    yield check_data_dir(paths)
    yield check_database(paths)
    yield check_pyav()
    yield check_lavfi()
    yield check_shared_memory(paths)
    yield check_qt()
