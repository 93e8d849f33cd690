"""Tiny, pure image helpers shared by both implementations of the operations.

Lives at the top of the package (not in ``app.domain``, which stays free of
numpy, and not in ``app.services``, which ``app.legacy`` must not import) so
the legacy and the domain path encode snapshots with the very same code.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["ImagingError", "encode_png"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImagingError(ValueError):
    """The array cannot be encoded (wrong shape or type)."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(rgb: npt.NDArray[np.uint8], *, level: int = 1) -> bytes:
    """Encode an ``(height, width, 3)`` uint8 RGB array as a PNG (8-bit truecolour).

    ``level`` is the zlib compression level (1 = fast; previews are small).
    Deterministic: the same pixels always give the same bytes.
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        raise ImagingError(f"encode_png needs uint8 pixels, got {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImagingError(f"encode_png needs an (height, width, 3) RGB array, got shape {arr.shape}")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height == 0 or width == 0:
        raise ImagingError(f"encode_png needs a non-empty image, got {width}x{height}")
    # Every scanline starts with filter type 0 (None).
    raw = np.empty((height, width * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = arr.reshape(height, width * 3)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit, truecolour
    return b"".join((
        _PNG_SIGNATURE,
        _chunk(b"IHDR", ihdr),
        _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
        _chunk(b"IEND", b""),
    ))
