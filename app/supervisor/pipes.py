"""Reading a worker's stdout (JSON lines: heartbeats, evidence answers) and stderr (log lines).

The pipes are non-blocking with bounded buffers; one chunk per wake-up keeps the loop
fair between workers, a drain reads what is left (before judging a worker hung, and
its last words after an exit).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
from collections.abc import Callable
from typing import Any

from app.domain.text import mask_urls, printable
from app.supervisor.logbuf import parse_worker_line
from app.supervisor.process import Slot, WorkerProcess
from app.workerlink.protocol import EVIDENCE_TYPE, HEARTBEAT_TYPE, MAX_ERROR_CHARS

__all__ = ["MAX_PENDING_LINE", "READ_CHUNK", "PipeReader"]

log = logging.getLogger("app.supervisor.core")

READ_CHUNK = 65536
MAX_PENDING_LINE = 65536  # a stdout/stderr "line" longer than this is cut

Handler = Callable[[Slot, WorkerProcess, dict[str, Any]], None]


class PipeReader:
    """Splits a worker's output into lines and hands each to its consumer."""

    def __init__(self, selector: Callable[[], selectors.BaseSelector | None],
                 on_heartbeat: Handler, on_evidence: Handler) -> None:
        self._selector = selector
        self._on_heartbeat = on_heartbeat
        self._on_evidence = on_evidence

    def read(self, slot: Slot, proc: WorkerProcess, stdout: bool, drain: bool = False) -> None:
        fd = proc.out_fd if stdout else proc.err_fd
        if fd is None:
            return
        buf = proc.out_buf if stdout else proc.err_buf
        for _ in range(64 if drain else 1):  # one chunk per wake-up keeps the loop fair
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:  # EOF
                selector = self._selector()
                if selector is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        selector.unregister(fd)
                if buf:
                    self._line(slot, proc, bytes(buf), stdout)
                    buf.clear()
                if stdout:
                    proc.out_fd = None
                else:
                    proc.err_fd = None
                return
            if not stdout and not buf and slot.log.flood_limited() and b"\n" in chunk:
                # Flood fast path: count the whole lines without decoding them.
                head, _, tail = chunk.rpartition(b"\n")
                slot.log.count_dropped(head.count(b"\n") + 1)
                buf += tail
            else:
                buf += chunk
                start = 0
                while True:
                    nl = buf.find(b"\n", start)
                    if nl < 0:
                        break
                    self._line(slot, proc, bytes(buf[start:nl]), stdout)
                    start = nl + 1
                del buf[:start]
            if len(buf) > MAX_PENDING_LINE:
                self._line(slot, proc, bytes(buf[:MAX_PENDING_LINE]), stdout)
                buf.clear()

    def _line(self, slot: Slot, proc: WorkerProcess, raw: bytes, stdout: bool) -> None:
        try:
            self._line_unguarded(slot, proc, raw, stdout)
        except Exception:  # one odd line must not cost the worker its output
            log.exception("camera %s: cannot handle worker output line %r", slot.camera_id, raw[:200])

    def _line_unguarded(self, slot: Slot, proc: WorkerProcess, raw: bytes, stdout: bool) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not text.strip():
            return
        if stdout:
            if text.startswith("{"):
                try:
                    obj = json.loads(text)
                except ValueError:
                    obj = None
                if isinstance(obj, dict) and obj.get("type") == HEARTBEAT_TYPE:
                    self._on_heartbeat(slot, proc, obj)
                    return
                if isinstance(obj, dict) and obj.get("type") == EVIDENCE_TYPE:
                    self._on_evidence(slot, proc, obj)  # a snapshot/clip answer (app.supervisor.evidence)
                    return
            slot.log.add("worker", "INFO", f"[stdout] {text}", limited=True)
        else:
            level, msg = parse_worker_line(text)
            if level in ("ERROR", "CRITICAL") or not proc.last_err_line:
                proc.last_err_line = printable(mask_urls(msg[:MAX_ERROR_CHARS]))  # it ends up in exit reasons
            slot.log.add("worker", level, msg, limited=True)
