"""A station process with probes in flight, for the "station killed" probe test.

Runs N probes (the real worker's ``probe``) against SOURCE with a long timeout, each
from its own short-lived request thread, prints {"pids": [...]} once all N are
running, then idles until it is killed.

    python probe_station.py RUN_DIR N SOURCE
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from app.services.ports import ProbeRunner  # noqa: E402


def main() -> int:
    run_dir, n, source = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    run_dir.mkdir(parents=True, exist_ok=True)
    runner = ProbeRunner(run_dir=run_dir)
    for _ in range(n):
        threading.Thread(target=lambda: runner.probe(source, 60.0), daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        files = sorted(run_dir.glob("probe-*.pid"))
        if len(files) == n:
            break
        time.sleep(0.05)
    pids = [int(json.loads(f.read_text())["pid"]) for f in sorted(run_dir.glob("probe-*.pid"))]
    print(json.dumps({"pids": pids}), flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
