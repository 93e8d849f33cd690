"""scripts/run_benches.py (what `make bench` runs): 0 ran, 77 skipped with its reason, anything
else failed, and every file runs whatever came before it. Real subprocesses on tiny stand-ins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "scripts" / "run_benches.py"


def bench(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def run(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNNER), "--timeout", "60", *map(str, files)],
                          capture_output=True, text=True, timeout=90)


def test_ok_skip_and_failure_all_run_and_the_failure_fails_the_run(tmp_path: Path) -> None:
    fails = bench(tmp_path, "bench_a_fails.py", "import sys\nprint('half done')\nsys.exit(3)\n")
    skips = bench(tmp_path, "bench_b_skips.py", """\
        import sys
        print("SKIP: no frozen bundle here")
        sys.exit(77)
        """)
    ran_marker = tmp_path / "ran"
    ok = bench(tmp_path, "bench_c_ok.py", f"""\
        from pathlib import Path
        Path({str(ran_marker)!r}).write_text("yes")
        print("ratio 1.00")
        """)
    res = run(fails, skips, ok)
    assert res.returncode == 1, res.stdout + res.stderr
    assert ran_marker.read_text() == "yes"  # the failure did not stop the run
    assert "half done" in res.stdout and "ratio 1.00" in res.stdout  # the benches' own output
    summary = res.stdout[res.stdout.index("== bench summary"):]
    assert "1 ran, 1 skipped, 1 failed" in summary
    assert "bench_b_skips.py: no frozen bundle here" in summary
    assert "FAILED   bench_a_fails.py: exit 3" in summary
    assert "ran      bench_c_ok.py" in summary


def test_skips_alone_pass_and_a_missing_reason_is_said(tmp_path: Path) -> None:
    quiet = bench(tmp_path, "bench_quiet.py", "import sys\nsys.exit(77)\n")
    stderr_reason = bench(tmp_path, "bench_err.py", """\
        import sys
        print("SKIP: supervisord not installed", file=sys.stderr)
        sys.exit(77)
        """)
    ok = bench(tmp_path, "bench_ok.py", "pass\n")
    res = run(quiet, stderr_reason, ok)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = res.stdout[res.stdout.index("== bench summary"):]
    assert "1 ran, 2 skipped, 0 failed" in summary
    assert "bench_quiet.py: (the bench printed no SKIP: line)" in summary
    assert "bench_err.py: supervisord not installed" in summary


def test_a_crash_is_a_failure_not_a_skip(tmp_path: Path) -> None:
    crash = bench(tmp_path, "bench_crash.py", "raise RuntimeError('boom')\n")
    res = run(crash)
    assert res.returncode == 1
    assert "0 ran, 0 skipped, 1 failed" in res.stdout
    assert "RuntimeError: boom" in res.stderr
