"""cameras.yaml against hostile files, and export onto what is not a regular file.

An alias chain, a huge file or deep nesting is refused as ``file:line: message`` at
once (the unbounded versions ran for hours or ran out of memory); an export only
ever writes a regular file, atomically, and a file with passwords is 0600.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from app.domain import Camera
from app.platform.paths import sqlite_url
from app.store import open_store
from app.store.yaml_io import (
    MAX_DEPTH,
    SETTING_MAX_FILE_BYTES,
    ConfigFileError,
    export_file,
    import_file,
    parse_cameras_file,
)


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(sqlite_url(tmp_path / "station.db"))
    with s.uow() as uow:
        uow.cameras.add(Camera(name="Yard", source="rtsp://admin:Sup3rSecret@10.0.0.5/live"))
        uow.commit()
    yield s
    s.engine.dispose()


def alias_chain(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\ncameras: []\n"


def refusal(path: Path, **kw) -> tuple[str, float]:
    t0 = time.perf_counter()
    with pytest.raises(ConfigFileError) as ei:
        parse_cameras_file(path, **kw)
    return str(ei.value), time.perf_counter() - t0


def test_alias_chain_is_refused_at_its_line(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(alias_chain(9))
    assert len(f.read_bytes()) < 500
    msg, took = refusal(f)
    assert msg.startswith(f"{f}:6: ") and "aliases expand to more than 100,000 values" in msg
    assert took < 5.0  # generous for a loaded machine; the figure is in tests/bench


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text("x: &tags [a, b]\ncameras:\n  - {name: A, source: 'test://moving', tags: *tags}\n")
    with pytest.raises(ConfigFileError) as ei:  # "x" is not a key of the format, but it was read
        parse_cameras_file(f)
    assert "x: unknown key" in str(ei.value)


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    f = tmp_path / "deep.yaml"
    f.write_text("cameras:\n  " + "[" * 20_000 + "\n")
    msg, _took = refusal(f)
    assert msg == f"{f}:2: (file): nested more than {MAX_DEPTH} levels deep"


def test_file_size_cap_is_a_setting(tmp_path: Path, store) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("cameras: []\n" + "# padding\n" * 2000)  # 20 KB of comments
    msg, _ = refusal(f, max_bytes=10_000)
    assert msg == f"{f}:1: the file is larger than 10,000 bytes (setting {SETTING_MAX_FILE_BYTES})"
    with store.uow() as uow:
        uow.settings.set(SETTING_MAX_FILE_BYTES, 10_000)
        uow.commit()
    with pytest.raises(ConfigFileError, match="larger than 10,000 bytes"):
        import_file(store, f)
    with store.uow() as uow:
        uow.settings.set(SETTING_MAX_FILE_BYTES, 100_000)
        uow.commit()
    import_file(store, f)  # within the raised cap: an empty list, nothing changes


def test_export_refuses_devices_and_directories(tmp_path: Path, store) -> None:
    with pytest.raises(ConfigFileError, match="is a device; export writes regular files only"):
        export_file(store, "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(ConfigFileError, match="is a directory"):
        export_file(store, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigFileError, match="is a FIFO"):
        export_file(store, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_export_follows_a_symlink_and_keeps_it(tmp_path: Path, store) -> None:
    real = tmp_path / "real.yaml"
    real.write_text("old\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    export_file(store, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "Yard" in real.read_text() and "Sup3rSecret" not in real.read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_export_with_secrets_is_private(tmp_path: Path, store) -> None:
    out = tmp_path / "with-secrets.yaml"
    old = os.umask(0o022)
    try:
        export_file(store, out, include_secrets=True)
        assert stat.S_IMODE(out.stat().st_mode) == 0o600 and "Sup3rSecret" in out.read_text()
        masked = tmp_path / "masked.yaml"
        export_file(store, masked)
        assert stat.S_IMODE(masked.stat().st_mode) == 0o644
    finally:
        os.umask(old)
