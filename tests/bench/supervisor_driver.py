"""The station's supervisor in a process of its own, for tests/bench/bench_supervisor.py.

    python tests/bench/supervisor_driver.py RUN_DIR LOG_DIR SPECS_JSON

Builds the supervisor the way the station does (app/station/wiring.py: no policy given, so
the default RestartPolicy), starts the workers of SPECS_JSON (a list of WorkerSpec fields),
prints ``ready`` and runs until its stdin closes (or SIGTERM), then shuts down; a ``status``
line on its stdin prints the workers' states and last heartbeats as one JSON line. The bench
watches it from outside exactly as it watches supervisord: the new child process of this
process after a worker is killed.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.supervisor import Supervisor, WorkerSpec  # noqa: E402


def main(argv: list[str]) -> int:
    run_dir, log_dir, specs_json = Path(argv[0]), Path(argv[1]), Path(argv[2])
    specs = [WorkerSpec(**{**s, "command": tuple(s["command"]) if s.get("command") else None,
                           "extra_args": tuple(s.get("extra_args", ()))})
             for s in json.loads(specs_json.read_text())]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    sup = Supervisor(run_dir, log_dir, policy=None)  # as the station builds it
    sup.start()
    try:
        for spec in specs:
            sup.start_worker(spec)
        print("ready", flush=True)

        def wait_stdin() -> None:
            for line in sys.stdin:  # "status": one JSON line of every worker's last heartbeat
                if line.strip() == "status":
                    print(json.dumps({cid: {"state": str(st.state), "fps": st.fps, "decoded": st.decoded,
                                            "dropped": st.dropped, "pid": st.pid}
                                      for cid, st in sup.statuses().items()}), flush=True)
            done.set()

        threading.Thread(target=wait_stdin, daemon=True).start()
        while not done.wait(0.5):
            pass
    finally:
        sup.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
