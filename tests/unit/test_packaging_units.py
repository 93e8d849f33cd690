"""The systemd unit gives the station room for descriptors (systemd's default soft limit is 1,024)."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "linux" / "edge-station-kiosk.service"


def test_the_kiosk_unit_sets_limit_nofile() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]
    unit.read(UNIT, encoding="utf-8")
    assert int(unit["Service"]["LimitNOFILE"]) >= 8192
