"""Delivery of alert notifications to webhooks and commands, off the engine's thread.

The engine hands :class:`Dispatcher.submit` a change and the rule's
:class:`~app.domain.rules.Notify`; a small pool of threads drains a bounded
queue. A full queue drops the job (counted and logged): a dead webhook can slow
deliveries down but never blocks an evaluation tick.

- Webhook: ``POST`` of the change as JSON (``AlertChange.to_json``), a timeout
  per attempt, bounded retries with backoff on connection errors and 5xx
  answers; 4xx answers are final.
- Command: the rule's argument list run directly (never a shell), with
  ``{rule}``, ``{kind}``, ``{severity}``, ``{subject}``, ``{value}``,
  ``{threshold}``, ``{camera_id}``, ``{event_id}`` replaced inside the
  arguments, the JSON document on stdin, a timeout after which its whole
  process group is killed.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.domain.alerts import AlertChange
from app.domain.rules import Notify

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{(rule|kind|severity|subject|value|threshold|camera_id|event_id)\}")


class NotifyError(Exception):
    """A notification could not be delivered (the message says where and why)."""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery (kept in :attr:`Dispatcher.recent`)."""

    channel: str  # "webhook" | "command"
    target: str  # URL or program
    rule_name: str
    kind: str
    ok: bool
    attempts: int
    detail: str
    seconds: float
    at: float = field(default_factory=time.time)


def post_webhook(url: str, document: dict[str, Any], *, timeout: float = 5.0, retries: int = 2,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> tuple[int, str]:
    """POST ``document`` to ``url``; returns (attempts, status text) or raises :class:`NotifyError`."""
    body = json.dumps(document).encode()
    last = ""
    for attempt in range(1, retries + 2):
        req = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "edge-station-alerts/1"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme validated by the rule
                resp.read(65536)
                return attempt, f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code} {e.reason}"
            if e.code < 500 and e.code != 429:
                raise NotifyError(f"webhook {url}: {last} (not retried)") from e
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            last = f"{type(reason).__name__}: {reason}"
        if attempt <= retries:
            sleep(backoff * (2 ** (attempt - 1)))
    raise NotifyError(f"webhook {url}: {last} after {retries + 1} attempts")


def _fill(arg: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], arg)


def run_command(argv: tuple[str, ...] | list[str], change: AlertChange, *, timeout: float = 10.0) -> str:
    """Run the argument list (no shell) with the change's placeholders filled; raise on failure or timeout."""
    if not argv:
        raise NotifyError("command: empty argument list")
    doc = change.to_json()
    values = {
        "rule": change.rule_name, "kind": str(change.kind), "severity": str(change.severity),
        "subject": change.subject, "value": "" if change.value is None else f"{change.value:g}",
        "threshold": "" if change.threshold is None else f"{change.threshold:g}",
        "camera_id": "" if change.camera_id is None else str(change.camera_id),
        "event_id": "" if doc["event_id"] is None else str(doc["event_id"]),
    }
    args = [_fill(a, values) for a in argv]
    env = {**os.environ, **{f"EDGE_ALERT_{k.upper()}": v for k, v in values.items()}}
    try:
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, start_new_session=True, close_fds=True,
        )
    except OSError as e:
        raise NotifyError(f"command {args[0]!r}: cannot start: {e}") from e
    try:
        out, _ = proc.communicate(json.dumps(doc).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise NotifyError(f"command {args[0]!r}: still running after {timeout:g} s, killed") from None
    text = out.decode(errors="replace").strip()[-300:]
    if proc.returncode != 0:
        raise NotifyError(f"command {args[0]!r}: exit code {proc.returncode}: {text}")
    return text


class Dispatcher:
    """A bounded queue drained by ``workers`` threads. ``submit`` never blocks."""

    def __init__(
        self,
        *,
        workers: int = 2,
        max_queue: int = 256,
        webhook_timeout: float = 5.0,
        webhook_retries: int = 2,
        webhook_backoff: float = 0.5,
        command_timeout: float = 10.0,
    ):
        self.webhook_timeout = webhook_timeout
        self.webhook_retries = webhook_retries
        self.webhook_backoff = webhook_backoff
        self.command_timeout = command_timeout
        self._q: queue.Queue[tuple[str, str, AlertChange, tuple[str, ...]] | None] = queue.Queue(max_queue)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"alert-notify-{i}", daemon=True) for i in range(workers)
        ]
        #: adds to a webhook's JSON document (the station: the event's snapshot and clip URLs)
        self.document_hook: Callable[[AlertChange, dict[str, Any]], dict[str, Any]] | None = None
        self.recent: deque[Delivery] = deque(maxlen=200)
        self.submitted = 0
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        for t in self._threads:
            t.start()

    def submit(self, change: AlertChange, notify: Notify) -> int:
        """Queue the rule's webhook and command for ``change``; returns the number of jobs queued."""
        jobs: list[tuple[str, str, AlertChange, tuple[str, ...]]] = []
        if notify.webhook_url:
            jobs.append(("webhook", notify.webhook_url, change, ()))
        if notify.command:
            jobs.append(("command", notify.command[0], change, tuple(notify.command)))
        queued = 0
        for job in jobs:
            if self._stop.is_set():
                break
            try:
                with self._lock:
                    self._q.put_nowait(job)
                    self._busy += 1
                    self.submitted += 1
                queued += 1
            except queue.Full:
                with self._lock:
                    self.dropped += 1
                log.warning("alerts: notification queue full, dropped %s to %s for %r",
                            job[0], job[1], change.rule_name)
        return queued

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            channel, target, change, argv = job
            t0 = time.monotonic()
            attempts, ok = 1, False
            try:
                if channel == "webhook":
                    attempts, detail = post_webhook(
                        target, self._document(change), timeout=self.webhook_timeout,
                        retries=self.webhook_retries, backoff=self.webhook_backoff, sleep=self._sleep,
                    )
                else:
                    detail = run_command(argv, change, timeout=self.command_timeout)
                ok = True
            except NotifyError as e:
                detail = str(e)
                if channel == "webhook":
                    attempts = self.webhook_retries + 1
                log.warning("alerts: %s", detail)
            except Exception as e:  # never let a worker thread die
                detail = f"{type(e).__name__}: {e}"
                log.exception("alerts: %s delivery to %s failed", channel, target)
            d = Delivery(channel, target, change.rule_name, str(change.kind), ok, attempts, detail,
                         time.monotonic() - t0)
            self.recent.append(d)
            with self._lock:
                if ok:
                    self.delivered += 1
                else:
                    self.failed += 1
                self._busy -= 1
                self._idle.notify_all()

    def _document(self, change: AlertChange) -> dict[str, Any]:
        doc = change.to_json()
        if self.document_hook is not None:
            try:
                doc = self.document_hook(change, doc)
            except Exception:
                log.exception("alerts: the webhook document hook failed; sending the plain document")
        return doc

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)  # a close() cuts retry back-off short

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued job has been attempted (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs, drop what is still queued, and wait up to ``timeout`` for the threads."""
        self._stop.set()
        while True:
            try:
                job = self._q.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                with self._lock:
                    self._busy -= 1
                    self.dropped += 1
        for _ in self._threads:
            try:
                self._q.put_nowait(None)
            except queue.Full:
                break
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
