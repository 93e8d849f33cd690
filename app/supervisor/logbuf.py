"""Per-camera log sink: a bounded ring buffer in memory plus a size-rotated file.

Worker stderr can flood; lines beyond a token-bucket rate are counted and dropped
(a summary line says how many), so neither memory, disk nor the supervisor
thread's time grows with the flood. Disk use is bounded by
(backups + 1) * max_bytes plus one line.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
import time
from collections import deque
from pathlib import Path

from app.domain.text import mask_urls, printable
from app.platform.files import PrivateRotatingFileHandler
from app.supervisor.model import LogLine, LogSource

LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL")
MAX_LINE_CHARS = 4096


def parse_worker_line(raw: str) -> tuple[str, str]:
    """'LEVEL message' -> (LEVEL, message); unknown prefixes are INFO with the whole line."""
    head, _, rest = raw.partition(" ")
    up = head.upper().rstrip(":")
    if up in LEVELS:
        if up == "WARN":
            up = "WARNING"
        elif up == "FATAL":
            up = "CRITICAL"
        return up, rest
    return "INFO", raw


def _format(line: LogLine) -> str:
    t = time.gmtime(line.ts)
    ms = int((line.ts % 1) * 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms:03d}Z"
    return f"{stamp} {line.source} {line.level} {line.text}"


class LogSink:
    """Ring buffer + rotating file for one camera. Thread-safe for readers."""

    def __init__(
        self,
        path: Path,
        ring_size: int = 1000,
        max_bytes: int = 1_000_000,
        backups: int = 3,
        rate: float = 200.0,
        burst: float = 1000.0,
    ) -> None:
        self.path = path
        self._ring: deque[LogLine] = deque(maxlen=ring_size)
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600, and a full disk drops lines with one report a minute instead of a traceback each.
        self._handler = PrivateRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last_refill = time.monotonic()
        self.suppressed = 0  # worker lines dropped since the last summary
        self.suppressed_total = 0

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last_refill) * self._rate)
        self._last_refill = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def add(self, source: LogSource, level: str, text: str, ts: float | None = None,
            limited: bool = False) -> LogLine | None:
        """Store one line; with limited=True it may be dropped by the flood limiter (-> None)."""
        if limited and not self._take_token():
            self.suppressed += 1
            self.suppressed_total += 1
            return None
        # Every line, the worker's and the supervisor's, in memory and on disk: no URL
        # password, no control character (a newline in a source cannot forge a line).
        text = printable(mask_urls(text))
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f"... [{len(text) - MAX_LINE_CHARS} chars cut]"
        line = LogLine(ts=time.time() if ts is None else ts, source=source, level=level, text=text)
        with self._lock:
            self._ring.append(line)
        self._write(line)
        return line

    def count_dropped(self, n: int) -> None:
        """Lines dropped without being parsed (flood fast path)."""
        self.suppressed += n
        self.suppressed_total += n

    def flood_limited(self) -> bool:
        """True when the bucket is empty (the caller may skip parsing a chunk)."""
        now = time.monotonic()
        return self._tokens + (now - self._last_refill) * self._rate < 1.0

    def flush_summary(self) -> LogLine | None:
        """If lines were dropped since the last call, record one summary line."""
        if not self.suppressed:
            return None
        n, self.suppressed = self.suppressed, 0
        return self.add("supervisor", "WARNING",
                        f"log flood: {n} worker log line(s) dropped (limit {self._rate:g}/s)")

    def _write(self, line: LogLine) -> None:
        record = logging.makeLogRecord({"msg": _format(line), "levelno": logging.INFO,
                                        "levelname": "INFO", "args": None})
        self._handler.handle(record)

    def tail(self, limit: int) -> list[LogLine]:
        with self._lock:
            if limit <= 0:
                return []
            items = list(self._ring)
        return items[-limit:]

    def close(self) -> None:
        self._handler.close()
