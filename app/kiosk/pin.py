"""The operator PIN that guards exit and settings in kiosk mode.

Stored in the data dir (``kiosk-pin.json``, readable only by its owner) as a
salted scrypt hash, so anyone with access to the data dir can set or reset it
from the command line, and nobody can read it back. Wrong attempts are rate
limited: after ``free_attempts`` misses every further try waits, doubling.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PIN_FILE = "kiosk-pin.json"
MIN_LEN, MAX_LEN = 4, 12
# scrypt cost: ~50 ms here; high enough to make guessing offline slow, low enough for a kiosk.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class PinError(Exception):
    """A PIN that cannot be used, or a PIN file that cannot be read or written."""


def check_pin_format(pin: str) -> None:
    if not pin.isdigit() or not (MIN_LEN <= len(pin) <= MAX_LEN):
        raise PinError(f"a PIN is {MIN_LEN} to {MAX_LEN} digits")


def _hash(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=32)


@dataclass(frozen=True)
class PinHash:
    salt: bytes
    digest: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def create(cls, pin: str) -> PinHash:
        check_pin_format(pin)
        salt = secrets.token_bytes(16)
        return cls(salt, _hash(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    def matches(self, pin: str) -> bool:
        return hmac.compare_digest(self.digest, _hash(pin, self.salt, self.n, self.r, self.p))

    def to_json(self) -> str:
        return json.dumps({"scheme": "scrypt", "n": self.n, "r": self.r, "p": self.p,
                           "salt": self.salt.hex(), "hash": self.digest.hex()})

    @classmethod
    def from_json(cls, text: str) -> PinHash:
        d = json.loads(text)
        if d.get("scheme") != "scrypt":
            raise PinError(f"unknown PIN scheme {d.get('scheme')!r}")
        return cls(bytes.fromhex(d["salt"]), bytes.fromhex(d["hash"]), int(d["n"]), int(d["r"]), int(d["p"]))


def pin_path(data_dir: Path) -> Path:
    return Path(data_dir) / PIN_FILE


def save_pin(data_dir: Path, pin: str) -> Path:
    """Hash and store ``pin`` (mode 0600, written atomically)."""
    h = PinHash.create(pin)
    path = pin_path(data_dir)
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(h.to_json())
        os.replace(tmp, path)
    except OSError as e:
        raise PinError(f"cannot write {path}: {e.strerror or e}") from e
    return path


def load_pin(data_dir: Path) -> PinHash | None:
    path = pin_path(data_dir)
    try:
        return PinHash.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as e:
        raise PinError(f"cannot read {path}: {e}") from e


def clear_pin(data_dir: Path) -> bool:
    try:
        pin_path(data_dir).unlink()
        return True
    except FileNotFoundError:
        return False


class PinGuard:
    """Checks PINs against the stored hash with a back-off after repeated misses."""

    def __init__(self, pin_hash: PinHash | None, *, free_attempts: int = 3, base_delay: float = 30.0,
                 max_delay: float = 900.0, clock: Callable[[], float] = time.monotonic):
        self._hash = pin_hash
        self.free_attempts = free_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock = clock
        self.failures = 0
        self._locked_until = 0.0

    @property
    def has_pin(self) -> bool:
        return self._hash is not None

    def reload(self, pin_hash: PinHash | None) -> None:
        """Use a newly stored hash (set from the CLI while the kiosk runs); misses still count."""
        self._hash = pin_hash

    def locked_for(self) -> float:
        """Seconds until the next attempt is accepted (0 = now)."""
        return max(0.0, self._locked_until - self._clock())

    def check(self, pin: str) -> bool:
        """True when ``pin`` is right. While locked every attempt is refused unchecked.

        Without a stored PIN nothing can be unlocked: kiosk mode asks the
        integrator to set one (``edge-station pin set``).
        """
        if self.locked_for() > 0 or self._hash is None:
            return False
        if self._hash.matches(pin):
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= self.free_attempts:
            extra = self.failures - self.free_attempts
            self._locked_until = self._clock() + min(self.max_delay, self.base_delay * 2**extra)
        return False
