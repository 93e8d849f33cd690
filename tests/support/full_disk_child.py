"""Runs inside its own mount namespace (``unshare -rm``): a 4 MB tmpfs is the disk, then it is filled.

    python full_disk_child.py DIR

Prints one JSON object with what the station did on the full disk.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args, "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def main() -> int:
    root = Path(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], check=True)
    data = root / "data"
    out: dict[str, object] = {}
    added = cli("cameras", "add", "Porch", "test://still", data=data)
    out["add_before"] = [added.returncode, added.stderr.strip()]
    fd = os.open(root / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 512, 1):  # to the last byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                out["fill"] = e.strerror
    finally:
        os.close(fd)
    listed = cli("cameras", "list", data=data)
    out["list"] = [listed.returncode, listed.stdout, listed.stderr.strip()]
    added = cli("cameras", "add", "Gate", "test://still", data=data)
    out["add_full"] = [added.returncode, added.stderr.strip()]
    doctor = cli("doctor", data=data)
    out["doctor"] = [ln for ln in doctor.stdout.splitlines() if "data dir" in ln or "database" in ln]

    from app.platform.logsetup import setup_logging, teardown_logging
    from app.platform.paths import sqlite_url
    from app.store.db import make_engine, storage_health

    engine = make_engine(sqlite_url(data / "station.db"))
    out["health"] = storage_health(engine)
    engine.dispose()
    # 500 lines to a log on the full disk: stderr gets one report, not a traceback a line.
    err_path = root.parent / "stderr.txt"
    with open(err_path, "w") as err:
        saved, sys.stderr = sys.stderr, err
        try:
            setup_logging(data / "logs")
            for i in range(500):
                logging.getLogger("app.test").info("line %d %s", i, "x" * 200)
            teardown_logging()
        finally:
            sys.stderr = saved
    out["log_stderr"] = err_path.read_text()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
