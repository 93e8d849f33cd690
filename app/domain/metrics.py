"""Value types of the metrics history: what a persisted minute of a series holds."""

from __future__ import annotations

from dataclasses import dataclass

#: How long minute rollups are kept.
ROLLUP_RETENTION_SECONDS = 7 * 86400


def labels_key(labels: dict[str, object] | tuple[tuple[str, str], ...] | None) -> tuple[tuple[str, str], ...]:
    """The canonical, hashable form of a label set: sorted ``(name, value)`` pairs of strings."""
    if not labels:
        return ()
    items = labels.items() if isinstance(labels, dict) else labels
    return tuple(sorted((str(k), str(v)) for k, v in items))


def labels_text(labels: tuple[tuple[str, str], ...]) -> str:
    """``camera=3,path=domain`` — how a label set is written in the database."""
    return ",".join(f"{k}={v}" for k, v in labels)


def parse_labels_text(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    pairs: dict[str, object] = {}
    for part in text.split(","):
        name, value = part.split("=", 1)
        pairs[name] = value
    return labels_key(pairs)


@dataclass(frozen=True)
class RollupPoint:
    """One minute of one series: aggregates of its 1-second samples."""

    series: str
    labels: tuple[tuple[str, str], ...]
    minute: int  # unix time // 60
    count: int
    sum: float
    min: float
    max: float
    last: float

    @property
    def start(self) -> int:
        """Unix time of the minute's first second."""
        return self.minute * 60

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else float("nan")
