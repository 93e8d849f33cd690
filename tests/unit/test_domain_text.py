"""The shared text checks and the masking of URL passwords in any text."""

from __future__ import annotations

import pytest

from app.domain.text import mask_urls, printable, text_problem


@pytest.mark.parametrize(("text", "masked"), [
    ("rtsp://admin:Sup3rSecret@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"),
    ("start requested (Gate: rtsp://a:b@cam/x) and http://u:p@h/", "start requested (Gate: rtsp://a:***@cam/x) and http://u:***@h/"),
    ("cannot open rtsp://:only-pass@cam/", "cannot open rtsp://:***@cam/"),
    ("rtsp://admin:p@ss@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://cam.local:554/live", "rtsp://cam.local:554/live"),
    ("no url here: a:b@c", "no url here: a:b@c"),
])
def test_mask_urls(text: str, masked: str) -> None:
    assert mask_urls(text) == masked


def test_text_problem_names_the_character_and_its_place() -> None:
    assert text_problem("ok name", max_len=10) is None
    assert text_problem("ab\x1bc", max_len=10) == \
        "must not contain a control character (U+001B ESCAPE) at character 3".replace(" at", " (at") + ")"
    assert "U+202E" in (text_problem("\u202eabc", max_len=10) or "")
    assert "at most 3" in (text_problem("abcd", max_len=3) or "")
    assert text_problem("  ", max_len=3, required=True) == "must not be empty"
    assert text_problem("a\nb", max_len=9, multiline=True) is None
    assert "U+000A" in (text_problem("a\nb", max_len=9) or "")
    assert text_problem(5, max_len=9) == "must be text, not int"


def test_printable_keeps_a_log_line_one_line() -> None:
    assert printable("plain") == "plain"
    assert printable("a\nb\x1b[31m\u202e") == "a\\x0ab\\x1b[31m\\u202e"
