"""A minimal station process for the "station killed" tests.

Starts a Supervisor with N workers (the real worker, or the fake one), prints one JSON
line {"pids": [...]} once they all heartbeat, then idles until it is killed.

    python station.py RUN_DIR LOG_DIR OWNER N {real,fake,fake-immortal}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from app.supervisor import RestartPolicy, Supervisor, WorkerSpec, WorkerState  # noqa: E402

FAKE = (sys.executable, str(Path(__file__).resolve().parent / "fakeworker.py"))


def main() -> int:
    run_dir, log_dir, owner, n, mode = sys.argv[1:6]
    policy = RestartPolicy(heartbeat_interval=0.2, stable_after=1.0, backoff_initial=0.2)
    sup = Supervisor(Path(run_dir), Path(log_dir), policy=policy, owner=owner)
    sup.start()
    for cid in range(1, int(n) + 1):
        if mode == "real":
            spec = WorkerSpec(camera_id=cid, name=f"cam{cid}", source="test://moving?size=160x90&rate=5")
        else:
            extra = ("--fake-no-pdeathsig",) if mode == "fake-immortal" else ()
            spec = WorkerSpec(camera_id=cid, name=f"cam{cid}", source="test://moving",
                              extra_args=extra, command=FAKE)
        sup.start_worker(spec)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sts = sup.statuses()
        if all(s.state == WorkerState.RUNNING for s in sts.values()):
            break
        time.sleep(0.05)
    print(json.dumps({"pids": [s.pid for s in sup.statuses().values()]}), flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
