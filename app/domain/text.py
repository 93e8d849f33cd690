"""One validation for every text field, and the masking of secrets in text.

A name, a location, a tag or a description is shown in tables, log lines, terminals
and notification texts. Characters that change how *other* text renders are refused
everywhere, with a message that says which character and where:

* control characters (C0 and C1, DEL): newlines forge log lines, ESC starts ANSI
  escape sequences in a terminal;
* bidirectional overrides, embeddings and isolates (U+202A-U+202E, U+2066-U+2069)
  and the line/paragraph separators U+2028/U+2029;
* lone surrogates (not text at all: they cannot be written as UTF-8).

A multi-line field (a description) may hold newlines and tabs; nothing else changes.
"""

from __future__ import annotations

import re
import unicodedata

_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_SEPARATORS = frozenset((0x2028, 0x2029))
_MULTILINE_OK = frozenset((0x0A, 0x09))


def _describe(ch: str) -> str:
    cp = ord(ch)
    try:
        name = unicodedata.name(ch)
    except ValueError:
        name = {0x0A: "LINE FEED", 0x0D: "CARRIAGE RETURN", 0x09: "TAB", 0x1B: "ESCAPE",
                0x00: "NUL", 0x7F: "DELETE"}.get(cp, "")
    if 0xD800 <= cp <= 0xDFFF:
        name = "a lone surrogate"
    return f"U+{cp:04X}" + (f" {name}" if name else "")


def bad_character(text: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """(position, why) of the first character no text field may hold, or None."""
    for i, ch in enumerate(text):
        cp = ord(ch)
        if multiline and cp in _MULTILINE_OK:
            continue
        if cp < 0x20 or 0x7F <= cp <= 0x9F:
            what = "a control character"
        elif cp in _BIDI_CONTROLS:
            what = "a bidirectional text override"
        elif cp in _SEPARATORS:
            what = "a line separator"
        elif 0xD800 <= cp <= 0xDFFF:
            what = "not valid text"
        else:
            continue
        return i, f"{what} ({_describe(ch)})"
    return None


def text_problem(value: object, *, max_len: int, required: bool = False,
                 multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored in a text field, or None.

    The message names the character and its position (1-based), so the caller only
    adds the field's name.
    """
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if required and not value.strip():
        return "must not be empty"
    if len(value) > max_len:
        return f"must be at most {max_len} characters (got {len(value)})"
    bad = bad_character(value, multiline=multiline)
    if bad is not None:
        pos, why = bad
        return f"must not contain {why} (at character {pos + 1})"
    return None


# scheme://user:password@ or scheme://:password@ anywhere in a text; the password
# ends at the last "@" before the host part (passwords may hold "@" unescaped).
_URL_SECRET = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/:@]*):([^\s/]*)@")


def mask_urls(text: str) -> str:
    """Every URL password in ``text`` replaced by ``***`` (the user name stays)."""
    if "://" not in text:
        return text
    return _URL_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (a log line stays one line)."""
    if bad_character(text) is None:
        return text
    out = []
    for ch in text:
        cp = ord(ch)
        if cp < 0x20 or 0x7F <= cp <= 0x9F or cp in _BIDI_CONTROLS or cp in _SEPARATORS \
                or 0xD800 <= cp <= 0xDFFF:
            out.append(f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}")
        else:
            out.append(ch)
    return "".join(out)
