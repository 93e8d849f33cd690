"""Notifications over real HTTP on 127.0.0.1 and real commands (no shell)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.alerts import AlertEngine, Dispatcher, NotifyError, post_webhook, run_command
from app.domain.alerts import AlertChange, ChangeKind
from app.domain.rules import AlertRule, Comparator, Notify, Severity, TargetKind
from app.metrics import MetricsRegistry, camera_labels

T0 = 1_800_000_000.0


class Hook:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with the next scripted status."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0):
        self.bodies: list[dict] = []
        self.statuses = list(statuses or [])
        self.delay = delay
        self.hit = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.delay:
                    time.sleep(hook.delay)
                status = hook.statuses.pop(0) if hook.statuses else 200
                hook.bodies.append({"status": status, "type": self.headers["Content-Type"], **json.loads(body)})
                hook.hit.set()
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def dead_url() -> str:
    """A port on 127.0.0.1 with nobody listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def change(**kw) -> AlertChange:
    from datetime import datetime

    base = dict(kind=ChangeKind.FIRING, rule_name="low fps", severity=Severity.WARNING, subject="camera 1",
                at=datetime.fromtimestamp(T0, UTC), notify=True, camera_id=1, value=2.0, threshold=5.0)
    base.update(kw)
    return AlertChange(**base)


def test_webhook_delivers_json(hook: Hook) -> None:
    attempts, status = post_webhook(hook.url, change().to_json(), timeout=2)
    assert (attempts, status) == (1, "HTTP 200")
    (body,) = hook.bodies
    assert body["type"] == "application/json"
    assert body["rule"] == "low fps" and body["kind"] == "firing" and body["value"] == 2.0
    assert body["threshold"] == 5.0 and body["camera_id"] == 1 and body["severity"] == "warning"


def test_webhook_retries_server_errors_but_not_client_errors() -> None:
    h = Hook(statuses=[503, 500, 200])
    try:
        attempts, _ = post_webhook(h.url, {"x": 1}, timeout=2, retries=2, backoff=0.01)
        assert attempts == 3 and [b["status"] for b in h.bodies] == [503, 500, 200]
        h.statuses = [500, 500, 500, 500]
        with pytest.raises(NotifyError, match="after 3 attempts"):
            post_webhook(h.url, {"x": 1}, timeout=2, retries=2, backoff=0.01)
        h.bodies.clear()
        h.statuses = [404]
        with pytest.raises(NotifyError, match="404.*not retried"):
            post_webhook(h.url, {"x": 1}, timeout=2, retries=2, backoff=0.01)
        assert len(h.bodies) == 1
    finally:
        h.close()


def test_dead_and_hanging_webhooks_do_not_stall_evaluation(hook: Hook) -> None:
    """Rules notify a dead port, a server that takes 3 s per answer, and a working one;
    every tick stays fast and the working hook still gets its notification."""
    slow = Hook(delay=3.0)
    dispatcher = Dispatcher(workers=3, webhook_timeout=1.0, webhook_retries=1, webhook_backoff=0.05)
    now = [T0]
    reg = MetricsRegistry(clock=lambda: now[0])
    rules = [
        AlertRule(name=f"low fps {i}", metric="fps", comparator=Comparator.LT, threshold=5,
                  target=TargetKind.ALL_CAMERAS, cooldown=0, notify=Notify(webhook_url=url))
        for i, url in enumerate([dead_url(), slow.url, hook.url])
    ]
    engine = AlertEngine(reg, dispatcher=dispatcher, clock=lambda: now[0], cameras=lambda: [1, 2, 3, 4], tz=UTC,
                         rules=rules)
    try:
        worst = 0.0
        for i in range(20):  # flapping: a firing every other tick, 3 rules x 4 cameras
            now[0] = T0 + i
            for cam in (1, 2, 3, 4):
                reg.record("fps", 1.0 if i % 2 == 0 else 30.0, camera_labels(cam), ts=now[0])
            t = time.perf_counter()
            engine.tick(now[0])
            worst = max(worst, time.perf_counter() - t)
        assert worst < 0.5, f"a tick took {worst:.3f} s while webhooks were dead/hanging"
        assert engine.flush(10)
        assert hook.hit.wait(10), "the working webhook got nothing"
        assert dispatcher.submitted + dispatcher.dropped == 3 * 4 * 20  # firing + resolved each
        assert any(b["rule"] == "low fps 2" for b in hook.bodies)
    finally:
        dispatcher.close(timeout=10)
        slow.close()
    dead = [d for d in dispatcher.recent if d.target.endswith("/hook") and not d.ok]
    assert dead, "the dead webhook's failures are recorded"
    assert all("Connection" in d.detail or "refused" in d.detail or "timed out" in d.detail.lower()
               or "after" in d.detail for d in dead)


def test_engine_sends_firing_and_resolved_to_the_webhook(hook: Hook) -> None:
    dispatcher = Dispatcher(workers=1, webhook_timeout=2)
    now = [T0]
    reg = MetricsRegistry(clock=lambda: now[0])
    rule = AlertRule(name="offline", metric="offline", comparator=Comparator.GE, threshold=1,
                     target=TargetKind.CAMERA, camera_id=7, for_seconds=2, notify=Notify(webhook_url=hook.url))
    engine = AlertEngine(reg, dispatcher=dispatcher, clock=lambda: now[0], cameras=lambda: [7], tz=UTC,
                         rules=[rule])
    try:
        for i, v in enumerate([1, 1, 1, 0]):
            now[0] = T0 + i
            reg.record("offline", v, camera_labels(7), ts=now[0])
            engine.tick(now[0])
        assert engine.flush(10)
        assert dispatcher.wait_idle(10)
    finally:
        dispatcher.close()
    assert [(b["kind"], b["subject"], b["value"]) for b in hook.bodies] == [
        ("firing", "camera 7", 1.0), ("resolved", "camera 7", 0.0)]
    assert hook.bodies[0]["event_id"] is not None


def test_command_runs_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    script = ("import json, sys, os; doc = json.load(sys.stdin); "
              "open(sys.argv[1], 'w').write(json.dumps({'argv': sys.argv[2:], 'doc': doc, "
              "'env': os.environ['EDGE_ALERT_RULE']}))")
    # A shell would expand $HOME and run the `; touch` part; here they are plain text.
    argv = (sys.executable, "-c", script, str(out), "{rule}", "{value}", "$HOME; touch pwned")
    run_command(argv, change(), timeout=10)
    got = json.loads(out.read_text())
    assert got["argv"] == ["low fps", "2", "$HOME; touch pwned"]
    assert got["doc"]["kind"] == "firing" and got["env"] == "low fps"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_command_failures_and_timeout(tmp_path: Path) -> None:
    with pytest.raises(NotifyError, match="exit code 3"):
        run_command((sys.executable, "-c", "import sys; sys.exit(3)"), change(), timeout=10)
    with pytest.raises(NotifyError, match="cannot start"):
        run_command((str(tmp_path / "no-such-program"),), change(), timeout=10)
    # A command that hangs, with a grandchild: both are killed at the timeout.
    t = time.monotonic()
    with pytest.raises(NotifyError, match="killed"):
        run_command((sys.executable, "-c",
                     "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
                     " time.sleep(60)"), change(), timeout=1.0)
    assert time.monotonic() - t < 10


def test_dispatcher_queue_is_bounded() -> None:
    d = Dispatcher(workers=1, max_queue=2, webhook_timeout=1.0, webhook_retries=0)
    slow = Hook(delay=1.0)
    try:
        n = sum(d.submit(change(), Notify(webhook_url=slow.url)) for _ in range(10))
        assert n <= 3 and d.dropped >= 7  # one in flight at most, two queued
    finally:
        d.close(timeout=5)
        slow.close()
