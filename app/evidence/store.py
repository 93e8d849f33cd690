"""The evidence store: snapshot and clip files in ``<data dir>/evidence``, one row each.

Files are 0600 in 0700 directories (``cam-<id>/``). A file is listed only once it
is complete: workers write ``<name>.part`` and rename it, and the row is added
after the rename, so a worker killed mid-write leaves at most a ``.part`` file,
which :meth:`EvidenceStore.sweep` removes. Retention removes evidence older than
``max_age_days`` and then the oldest until the total is under ``max_total_mb``;
nothing is written while the disk's free space is under ``min_free_mb``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain.evidence import Evidence, EvidenceSettings, EvidenceUsage

if TYPE_CHECKING:  # pragma: no cover
    from app.store import Store

__all__ = ["DiskFloorReached", "EvidenceStore", "RetentionReport", "disk_free_bytes"]

log = logging.getLogger("edge_station.evidence")

MB = 1024 * 1024
#: a file in the store without a row, older than this, is a leftover (a crash between rename and insert)
ORPHAN_AGE_S = 600.0


class DiskFloorReached(Exception):
    """The disk's free space is at the evidence floor: nothing is written."""


def disk_free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged writer on the file system holding ``path``."""
    return shutil.disk_usage(path).free


@dataclass(frozen=True)
class RetentionReport:
    removed: int
    freed_bytes: int
    by_age: int
    by_size: int


class EvidenceStore:
    """Where evidence lives (files + rows). Thread-safe; ``free_space`` is injectable for tests."""

    def __init__(self, root: Path, store: Store, *, free_space: Callable[[Path], int] = disk_free_bytes,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self._store = store
        self.free_space = free_space
        self._clock = clock
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(self.root, 0o700)

    # -- paths ---------------------------------------------------------------------------

    def camera_dir(self, camera_id: int | None) -> Path:
        d = self.root / (f"cam-{camera_id}" if camera_id is not None else "station")
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return d

    def new_file(self, camera_id: int | None, kind: str, moment: str, event_id: int | None, ext: str) -> Path:
        """A fresh absolute path for a file of this evidence (nothing is created)."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self._clock()))
        event = f"ev{event_id}-" if event_id is not None else ""
        return self.camera_dir(camera_id) / f"{stamp}-{event}{moment}-{kind}-{secrets.token_hex(3)}.{ext}"

    def path_of(self, ev: Evidence) -> Path:
        return self.root / ev.path

    # -- space ---------------------------------------------------------------------------

    def budget(self, settings: EvidenceSettings) -> int:
        """Bytes that may still be written before the free-space floor; raises ``DiskFloorReached``."""
        free = self.free_space(self.root)
        floor = int(settings.min_free_mb * MB)
        if free <= floor:
            raise DiskFloorReached(
                f"the disk of {self.root} has {free / MB:.0f} MB free, at or under the evidence floor of "
                f"{settings.min_free_mb:g} MB: no snapshot or clip is written")
        return free - floor

    # -- rows ----------------------------------------------------------------------------

    def record(self, ev: Evidence, file: Path) -> Evidence:
        """List a complete file (already renamed into place): mode 0600, size from disk, one row."""
        from app.store.evidence import EvidenceRepository

        with contextlib.suppress(OSError):
            os.chmod(file, 0o600)
        rel = file.resolve().relative_to(self.root.resolve()).as_posix()
        ev = ev.with_changes(path=rel, bytes=file.stat().st_size)
        try:
            with self._store.uow() as uow:
                saved = EvidenceRepository(uow.session).add(ev)
                uow.commit()
        except BaseException:
            file.unlink(missing_ok=True)  # never a file without its row
            raise
        return saved

    def get(self, evidence_id: int) -> Evidence | None:
        from app.store.evidence import EvidenceRepository

        with self._store.uow() as uow:
            return EvidenceRepository(uow.session).get(evidence_id)

    def for_event(self, event_id: int) -> list[Evidence]:
        from app.store.evidence import EvidenceRepository

        with self._store.uow() as uow:
            return EvidenceRepository(uow.session).for_event(event_id)

    def for_events(self, event_ids: list[int]) -> dict[int, list[Evidence]]:
        from app.store.evidence import EvidenceRepository

        with self._store.uow() as uow:
            return EvidenceRepository(uow.session).for_events(event_ids)

    def list(self, camera_id: int | None = None, limit: int = 1000) -> list[Evidence]:
        from app.store.evidence import EvidenceRepository

        with self._store.uow() as uow:
            return EvidenceRepository(uow.session).list(camera_id, limit)

    def usage(self) -> builtins.list[EvidenceUsage]:
        from app.store.evidence import EvidenceRepository

        with self._store.uow() as uow:
            return EvidenceRepository(uow.session).usage()

    def total_bytes(self) -> int:
        from app.store.evidence import EvidenceRepository

        with self._store.uow() as uow:
            return EvidenceRepository(uow.session).total_bytes()

    # -- removal -------------------------------------------------------------------------

    def delete(self, items: builtins.list[Evidence]) -> int:
        """Remove rows and files (rows first: a listed file always exists). Returns bytes freed."""
        from app.store.evidence import EvidenceRepository

        if not items:
            return 0
        with self._lock:
            with self._store.uow() as uow:
                repo = EvidenceRepository(uow.session)
                for ev in items:
                    if ev.id is not None:
                        repo.delete(ev.id)
                uow.commit()
            freed = 0
            for ev in items:
                try:
                    self.path_of(ev).unlink()
                    freed += ev.bytes
                except FileNotFoundError:
                    pass
        return freed

    def delete_camera(self, camera_id: int) -> tuple[int, int]:
        """Remove every piece of evidence of a camera: (count, bytes)."""
        items = self.list(camera_id, limit=1_000_000)
        freed = self.delete(items)
        with contextlib.suppress(OSError):
            (self.root / f"cam-{camera_id}").rmdir()  # only if nothing else is left in it
        return len(items), freed

    def enforce(self, settings: EvidenceSettings, now: float | None = None) -> RetentionReport:
        """Age first, then total size (oldest first)."""
        from app.store.evidence import EvidenceRepository

        now = self._clock() if now is None else now
        cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=settings.max_age_days)
        with self._store.uow() as uow:
            repo = EvidenceRepository(uow.session)
            old = repo.older_than(cutoff)
            rest = [e for e in repo.oldest_first() if e.created_at >= cutoff]
        freed = self.delete(old)
        limit = int(settings.max_total_mb * MB)
        total = sum(e.bytes for e in rest)
        over: builtins.list[Evidence] = []
        for ev in rest:
            if total <= limit:
                break
            over.append(ev)
            total -= ev.bytes
        freed += self.delete(over)
        if old or over:
            log.info("evidence retention: removed %d by age and %d by size (%d bytes)", len(old), len(over), freed)
        return RetentionReport(len(old) + len(over), freed, len(old), len(over))

    def sweep(self, now: float | None = None, *, parts_older_than: float = 60.0) -> int:
        """Remove half-written ``.part`` files and files no row lists (older than a few minutes)."""
        from app.store.evidence import EvidenceRepository

        now = self._clock() if now is None else now
        with self._store.uow() as uow:
            listed = EvidenceRepository(uow.session).paths()
        removed = 0
        for path in self.root.rglob("*"):
            if not path.is_file():
                continue
            rel = path.relative_to(self.root).as_posix()
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            stale_part = path.name.endswith(".part") and age >= parts_older_than
            orphan = not path.name.endswith(".part") and rel not in listed and age > ORPHAN_AGE_S
            if stale_part or orphan:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
