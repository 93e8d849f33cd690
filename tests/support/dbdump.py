"""Compare a SQLite database's content before and after something that must not change it."""

import sqlite3
from pathlib import Path


def content(path: Path) -> list[str]:
    """Every table's rows as SQL text (schema and data), in a stable order."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return list(conn.iterdump())
