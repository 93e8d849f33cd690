"""The station log: a rotated file in the data dir, warnings on stderr, one set of handlers."""

from __future__ import annotations

import logging

import pytest

import app.platform.logsetup as logsetup
from app.platform.logsetup import setup_logging, station_log_path, teardown_logging


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    level = root.level
    yield
    teardown_logging()
    root.setLevel(level)


def test_info_goes_to_the_file_and_warnings_also_to_stderr(tmp_path, capsys, restore_root):
    path = setup_logging(tmp_path)
    assert path == tmp_path / "station.log" == station_log_path()
    logging.getLogger("edge_station.test").info("camera table refreshed")
    logging.getLogger("edge_station.test").warning("disk almost full")
    logging.getLogger("edge_station.test").debug("not at INFO")
    text = path.read_text(encoding="utf-8")
    assert "INFO    edge_station.test [MainThread] camera table refreshed" in text
    assert "WARNING edge_station.test" in text and "disk almost full" in text
    assert "not at INFO" not in text
    err = capsys.readouterr().err
    assert "edge-station: WARNING: disk almost full" in err and "camera table refreshed" not in err


def test_a_second_setup_replaces_the_handlers(tmp_path, restore_root):
    (tmp_path / "a").mkdir()
    setup_logging(tmp_path / "a")
    (tmp_path / "b").mkdir()
    setup_logging(tmp_path / "b")
    logging.getLogger("edge_station.test").warning("once")
    assert not (tmp_path / "a" / "station.log").exists()
    assert (tmp_path / "b" / "station.log").read_text(encoding="utf-8").count("once") == 1
    assert station_log_path() == tmp_path / "b" / "station.log"


def test_level_from_the_environment_and_a_bad_one_is_said(tmp_path, monkeypatch, capsys, restore_root):
    monkeypatch.setenv("EDGE_STATION_LOG_LEVEL", "debug")
    setup_logging(tmp_path)
    logging.getLogger("edge_station.test").debug("a debug line")
    assert "a debug line" in (tmp_path / "station.log").read_text(encoding="utf-8")
    monkeypatch.setenv("EDGE_STATION_LOG_LEVEL", "chatty")
    setup_logging(tmp_path)
    assert "EDGE_STATION_LOG_LEVEL='chatty' is not a log level; using INFO" in capsys.readouterr().err
    assert logging.getLogger().handlers[-2].level == logging.INFO


def test_the_file_is_rotated_by_size(tmp_path, monkeypatch, restore_root):
    monkeypatch.setattr(logsetup, "MAX_BYTES", 2_000)
    setup_logging(tmp_path)
    for i in range(200):
        logging.getLogger("edge_station.test").info("line %d %s", i, "x" * 40)
    assert (tmp_path / "station.log.1").exists()
    assert not (tmp_path / f"station.log.{logsetup.BACKUPS + 1}").exists()
    assert (tmp_path / "station.log").stat().st_size <= 2_000


def test_the_log_says_what_was_migrated_without_alembics_chatter(tmp_path, restore_root):
    from app.platform.paths import sqlite_url
    from app.store import open_store

    path = setup_logging(tmp_path)
    for _ in range(2):  # the second open finds nothing to migrate
        open_store(sqlite_url(tmp_path / "station.db")).dispose()
    text = path.read_text(encoding="utf-8")
    assert text.count("migrated from schema (empty) to") == 1
    assert "alembic" not in text
