"""Small helpers shared by the contract tests."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any, TypeVar

import av
import numpy as np
import pytest

from app.domain import ErrorCode, OperationError

T = TypeVar("T")


def wait_for(cond: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``cond`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def refused(fn: Callable[[], Any], code: ErrorCode, *fragments: str) -> OperationError:
    """Assert ``fn()`` raises an OperationError with ``code`` whose message contains every fragment."""
    with pytest.raises(OperationError) as ei:
        fn()
    err = ei.value
    assert err.code is code, f"expected {code}, got {err.code}: {err.message}"
    for f in fragments:
        assert f in err.message, f"{f!r} not in {err.message!r}"
    return err


def decode_png(png: bytes) -> np.ndarray:
    """Decode with FFmpeg (an independent decoder), as (height, width, 3) RGB."""
    with av.open(io.BytesIO(png), format="png_pipe") as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """Decode a JPEG with FFmpeg, as (height, width, 3) RGB."""
    with av.open(io.BytesIO(jpeg), format="jpeg_pipe") as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")
