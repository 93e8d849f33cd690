"""The API's bearer token: made at the first start, kept in the data dir, readable by its owner only."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_FILENAME = "api-token"


class TokenError(Exception):
    """The token file cannot be made or read safely; the message names the file and why."""


def token_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_FILENAME


def ensure_token(path: Path) -> str:
    """Read the token at ``path``, or create it (mode 0600, exclusively) when there is none.

    A file that others could read is tightened to 0600 (with a warning); a file owned by
    another user, an empty or malformed one, is refused.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path, repair=True)
    except OSError as e:
        raise TokenError(f"cannot create the API token file {path}: {e.strerror or e}") from e
    token = secrets.token_urlsafe(32)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    except OSError as e:
        path.unlink(missing_ok=True)
        raise TokenError(f"cannot write the API token file {path}: {e.strerror or e}") from e
    log.info("created the API token at %s", path)
    return token


def read_token(path: Path, *, repair: bool = False) -> str:
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TokenError(f"no API token at {path}: is the station running with this data dir?") from None
    except OSError as e:
        raise TokenError(f"cannot read the API token file {path}: {e.strerror or e}") from e
    if hasattr(os, "getuid") and st.st_uid != os.getuid() and os.getuid() != 0:
        raise TokenError(f"the API token file {path} belongs to another user (uid {st.st_uid}); refusing it")
    if repair and stat.S_IMODE(st.st_mode) & 0o077:
        log.warning("the API token file %s was readable by others (mode %o); setting it to 0600",
                    path, stat.S_IMODE(st.st_mode))
        os.chmod(path, 0o600)
    try:
        token = path.read_text().strip()
    except OSError as e:
        raise TokenError(f"cannot read the API token file {path}: {e.strerror or e}") from e
    if len(token) < 16 or not token.isprintable() or " " in token:
        raise TokenError(f"the API token file {path} does not hold a token; delete it and restart the station")
    return token


def rotate_token(path: Path) -> str:
    """Replace the token at ``path`` with a new one (after an unclean stop: the old one may have
    been sent to whatever listened on the port since)."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise TokenError(f"cannot replace the API token file {path}: {e.strerror or e}") from e
    log.warning("made a new API token at %s", path)
    return ensure_token(path)
