"""``edge-station doctor``: can this machine run the station? Each check says what it found."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from app.platform.paths import PathError, StationPaths

PREVIEW_SLOTS_WANTED = 16


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    info: bool = False  # nothing wrong, just worth saying (printed as [info])


#: shared library stem (the soname before ".so") -> the Debian/Ubuntu package that ships it
QT_LIBRARY_PACKAGES: dict[str, str] = {
    "libxcb-cursor": "libxcb-cursor0", "libxcb-icccm": "libxcb-icccm4", "libxcb-keysyms": "libxcb-keysyms1",
    "libxcb-shape": "libxcb-shape0", "libxcb-xinerama": "libxcb-xinerama0", "libxcb-randr": "libxcb-randr0",
    "libxcb-render-util": "libxcb-render-util0", "libxcb-image": "libxcb-image0", "libxcb-util": "libxcb-util1",
    "libxcb-xkb": "libxcb-xkb1", "libxcb-xfixes": "libxcb-xfixes0", "libxcb-sync": "libxcb-sync1",
    "libxcb-shm": "libxcb-shm0", "libxcb-render": "libxcb-render0", "libxcb": "libxcb1",
    "libxkbcommon-x11": "libxkbcommon-x11-0", "libxkbcommon": "libxkbcommon0", "libX11-xcb": "libx11-xcb1",
    "libX11": "libx11-6", "libEGL": "libegl1", "libGL": "libgl1", "libOpenGL": "libopengl0",
    "libfontconfig": "libfontconfig1", "libfreetype": "libfreetype6", "libdbus-1": "libdbus-1-3",
    "libglib-2.0": "libglib2.0-0", "libgthread-2.0": "libglib2.0-0", "libSM": "libsm6", "libICE": "libice6",
    "libwayland-client": "libwayland-client0", "libwayland-cursor": "libwayland-cursor0",
    "libwayland-egl": "libwayland-egl1",
}


@dataclass(frozen=True)
class MissingLibraries:
    """What the Qt platform plugin the window would load cannot find."""

    platform: str
    plugin: str
    libraries: tuple[str, ...]

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(QT_LIBRARY_PACKAGES[k] for k in map(_stem, self.libraries)
                                   if k in QT_LIBRARY_PACKAGES))

    def message(self) -> str:
        text = (f"Qt's {self.platform} platform plugin cannot load: missing shared libraries "
                f"{', '.join(self.libraries)} (needed by {self.plugin})")
        if self.packages:
            text += f"; install them with: sudo apt-get install {' '.join(self.packages)}"
        else:
            text += "; install the packages that provide them"
        return text


def _stem(soname: str) -> str:
    return soname.split(".so", 1)[0]


def qt_platform_name() -> str:
    """The platform plugin Qt will try first (``QT_QPA_PLATFORM``, else what the session offers)."""
    requested = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested:
        return requested
    if os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def _platform_plugin_dirs() -> list[str]:
    """Where Qt looks for platform plugins, in its order (without importing Qt)."""
    only = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if only:
        return [only]
    dirs = [os.path.join(d, "platforms") for d in os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if d]
    try:
        import importlib.util

        spec = importlib.util.find_spec("PySide6")
        if spec is not None and spec.origin:
            base = os.path.dirname(spec.origin)
            dirs += [os.path.join(base, "Qt", "plugins", "platforms"), os.path.join(base, "plugins", "platforms")]
    except (ImportError, ValueError):
        pass
    if getattr(sys, "frozen", False):
        base = getattr(sys, "_MEIPASS", os.path.dirname(sys.executable))
        dirs.append(os.path.join(base, "PySide6", "Qt", "plugins", "platforms"))
    return dirs


def missing_qt_libraries(platform: str | None = None) -> MissingLibraries | None:
    """The shared libraries the window's Qt platform plugin lacks (``ldd``), or None when it has
    them all, when there is no such plugin file to check, or on a system without ``ldd``."""
    if not sys.platform.startswith("linux"):
        return None
    platform = platform or qt_platform_name()
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    for directory in _platform_plugin_dirs():
        plugin = os.path.join(directory, f"libq{platform}.so")
        if not os.path.isfile(plugin):
            continue
        try:
            out = subprocess.run([ldd, plugin], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        missing = [line.split("=>", 1)[0].strip() for line in out.stdout.splitlines() if "not found" in line]
        if not missing:
            return None  # the first plugin Qt finds loads: fine
        return MissingLibraries(platform, plugin, tuple(dict.fromkeys(missing)))
    return None


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
    from app.store.preflight import sqlite_file

    db_file = sqlite_file(paths.db_url)
    if db_file is not None and not db_file.exists():  # a fresh machine: nothing is wrong
        return Check("database", True, f"{db_file}: not created yet (created at first start)", info=True)

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
    from app.workerlink.protocol import SLOT_SIZE

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
    """Start Qt in a child process: a missing platform plugin aborts the process that tries.
    First, the platform plugin's shared libraries: a missing one is named, with its package."""
    missing = missing_qt_libraries()
    if missing is not None:
        return Check("Qt platform", False, missing.message())
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
