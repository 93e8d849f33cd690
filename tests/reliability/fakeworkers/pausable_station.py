"""A station process for the "station paused" test (SIGSTOP, then SIGCONT).

Starts a Supervisor with N fake workers and a short heartbeat timeout, prints one JSON
line {"pids": [...]} once they all heartbeat, then one line per heartbeat batch:
{"beats": <heartbeats so far>, "hung": [<notes of workers killed as hung>], "pids": [...]}.

    python pausable_station.py RUN_DIR LOG_DIR OWNER N HEARTBEAT_TIMEOUT
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from app.supervisor import RestartPolicy, Supervisor, SupervisorEvent, WorkerSpec, WorkerState  # noqa: E402

FAKE = (sys.executable, str(Path(__file__).resolve().parent / "fakeworker.py"))


def main() -> int:
    run_dir, log_dir, owner, n, hb_timeout = sys.argv[1:6]
    policy = RestartPolicy(heartbeat_interval=0.2, heartbeat_timeout=float(hb_timeout), stable_after=1.0,
                           backoff_initial=0.2)
    sup = Supervisor(Path(run_dir), Path(log_dir), policy=policy, owner=owner)
    beats = 0
    hung: list[str] = []
    changed = threading.Event()

    def on_event(ev: SupervisorEvent) -> None:
        nonlocal beats
        if ev.kind == "heartbeat":
            beats += 1
            changed.set()
        elif ev.kind == "state" and ev.detail.get("to") == WorkerState.STALLED.value:
            hung.append(str(ev.detail.get("reason")))
            changed.set()

    sup.subscribe(on_event)
    sup.start()
    for cid in range(1, int(n) + 1):
        sup.start_worker(WorkerSpec(camera_id=cid, name=f"cam{cid}", source="test://moving", command=FAKE))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(s.state == WorkerState.RUNNING for s in sup.statuses().values()):
            break
        time.sleep(0.05)
    print(json.dumps({"pids": [s.pid for s in sup.statuses().values()]}), flush=True)
    while True:
        changed.wait(1.0)
        changed.clear()
        print(json.dumps({"beats": beats, "hung": list(hung),
                          "pids": [s.pid for s in sup.statuses().values()]}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
