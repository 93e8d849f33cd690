"""A full disk: reads keep working, writes and health say "disk full", logging stays quiet.

The disk is real: a 4 MB tmpfs mounted in a private mount namespace (``unshare -rm``,
no root needed where user namespaces are enabled), filled to the last byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).resolve().parents[1] / "support" / "full_disk_child.py"


def test_a_full_disk_keeps_reads_and_says_so(tmp_path: Path) -> None:
    assert shutil.which("unshare"), "util-linux's unshare is needed for the full-disk test"
    disk = tmp_path / "disk"
    disk.mkdir()
    run = subprocess.run(["unshare", "-rm", sys.executable, str(CHILD), str(disk)],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["add_before"] == [0, ""]
    assert got["fill"] == "No space left on device"
    code, stdout, stderr = got["list"]
    assert code == 0 and "Porch" in stdout, stderr  # reads keep working
    code, stderr = got["add_full"]
    assert code == 3 and stderr == ("edge-station: error: the disk is full: the database cannot be written "
                                    "(reads still work); free some space")
    assert any(ln.startswith("[FAIL] data dir: ") and "disk full" in ln for ln in got["doctor"]), got["doctor"]
    health = got["health"]
    assert health["ok"] is False and health["problem"].startswith("disk full: ")
    assert isinstance(health["free_bytes"], int) and health["free_bytes"] < 1 << 20
    lines = got["log_stderr"].splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0] and "Traceback" not in got["log_stderr"], lines
