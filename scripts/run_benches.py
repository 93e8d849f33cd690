"""Run every benchmark file and say which ran, which were skipped (and why) and which failed.

    python scripts/run_benches.py [--python PY] [--timeout S] [BENCH_FILE ...]

With no files it runs tests/bench/bench_*.py in name order. Each bench is a separate process
(QT_QPA_PLATFORM=offscreen unless set). Its exit code decides:

- 0: ran;
- 77: skipped: the bench cannot run on this machine; its ``SKIP: <reason>`` line (the last one
  it printed on stdout or stderr) is the reason in the summary;
- anything else (or a timeout): failed; the runner goes on with the next file.

The runner exits 0 when nothing failed, else 1, after running all of them. BENCH_QUICK=1 in the
environment is passed on: the benches that know it measure smaller sizes and shorter windows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SKIP_CODE = 77
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    path: Path
    code: int | None  # None: timed out
    seconds: float
    skip_reason: str | None = None

    @property
    def kind(self) -> str:
        if self.code == 0:
            return "ran"
        if self.code == SKIP_CODE:
            return "skipped"
        return "failed"


def _pump(stream: IO[str], sink: IO[str], seen: list[str]) -> None:
    for line in stream:
        sink.write(line)
        sink.flush()
        if line.startswith("SKIP:"):
            seen.append(line[len("SKIP:"):].strip())


def run_one(path: Path, python: str, timeout: float | None) -> Outcome:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.monotonic()
    proc = subprocess.Popen([python, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", env=env, start_new_session=True)
    skips: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, skips), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, skips), daemon=True)]
    for t in pumps:
        t.start()
    code: int | None
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"run_benches: {path} ran longer than {timeout:g} s: killed", file=sys.stderr)
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            proc.kill()
        proc.wait()
        code = None
    for t in pumps:
        t.join(5)
    out = Outcome(path, code, time.monotonic() - started)
    if code == SKIP_CODE:
        out.skip_reason = skips[-1] if skips else "(the bench printed no SKIP: line)"
    return out


def summary(outcomes: Sequence[Outcome]) -> str:
    ran = [o for o in outcomes if o.kind == "ran"]
    skipped = [o for o in outcomes if o.kind == "skipped"]
    failed = [o for o in outcomes if o.kind == "failed"]
    lines = ["", f"== bench summary: {len(ran)} ran, {len(skipped)} skipped, {len(failed)} failed"]
    for o in ran:
        lines.append(f"   ran      {o.path.name} ({o.seconds:.1f} s)")
    for o in skipped:
        lines.append(f"   skipped  {o.path.name}: {o.skip_reason}")
    for o in failed:
        why = "timed out" if o.code is None else f"exit {o.code}"
        lines.append(f"   FAILED   {o.path.name}: {why} ({o.seconds:.1f} s)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs each bench")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per bench (default: none)")
    args = ap.parse_args(argv)
    files = args.files or sorted((REPO / "tests" / "bench").glob("bench_*.py"))
    if not files:
        print("run_benches: no bench files found", file=sys.stderr)
        return 1
    outcomes = []
    for path in files:
        print(f"== {path}", flush=True)
        o = run_one(path, args.python, args.timeout)
        if o.kind == "skipped":
            print(f"== {path.name}: SKIP: {o.skip_reason}", flush=True)
        elif o.kind == "failed":
            print(f"== {path.name}: FAILED ({'timed out' if o.code is None else f'exit {o.code}'})",
                  flush=True)
        outcomes.append(o)
    print(summary(outcomes), flush=True)
    return 1 if any(o.kind == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
