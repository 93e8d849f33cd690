"""The worker protocol: what the worker (``app.worker``) and the station (``app.supervisor``,
the UI's preview reader) agree on. Both sides import this module; nothing here loads PyAV
or numpy.

- **Exit codes**: 0 clean stop, 1 crash, 78 configuration error (never retried).
- **The command line** of ``run`` (:class:`RunArgs`, :func:`run_argv`); the source is
  passed as ``--source -`` and written to the worker's stdin as one line (a camera
  password never shows in ``ps``).
- **stdout** carries one JSON object per line: a heartbeat (:data:`HEARTBEAT_FIELDS`,
  built with :func:`heartbeat_message`, read back with :func:`clean_heartbeat`) or an
  evidence answer (``{"type": "evidence", ...}``); **stderr** carries ``LEVEL message`` lines.
- **The preview slot**: a memory-mapped file with a fixed header and RGB24 rows
  (the layout constants below; ``app.worker.preview`` writes, ``app.workerlink.preview`` reads).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.domain.text import mask_urls, printable
from app.domain.worker import SourceState

__all__ = [
    "EVIDENCE_TYPE",
    "EXIT_CONFIG",
    "EXIT_CRASH",
    "EXIT_OK",
    "HEADER_FORMAT",
    "HEADER_SIZE",
    "HEARTBEAT_FIELDS",
    "HEARTBEAT_TYPE",
    "INTEREST_HOLD",
    "MAGIC",
    "MAX_ERROR_CHARS",
    "MAX_SOURCE_BYTES",
    "PAYLOAD_OFFSET",
    "PREVIEW_MAX_HEIGHT",
    "PREVIEW_MAX_WIDTH",
    "PREVIEW_PIXEL_BYTES",
    "SLOT_SIZE",
    "SOURCE_STATES",
    "VERSION",
    "WANTED_UNTIL_OFFSET",
    "WANT_HEIGHT_OFFSET",
    "RunArgs",
    "SourceState",
    "clean_heartbeat",
    "heartbeat_message",
    "run_argv",
]

# ---------------------------------------------------------------- exit codes

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: a configuration error, never retried

# ---------------------------------------------------------------- the run command line

#: The longest source (one line on the worker's stdin) the worker reads.
MAX_SOURCE_BYTES = 65536


@dataclass(frozen=True)
class RunArgs:
    """What the station tells a worker on its ``run`` command line (the source goes on stdin)."""

    camera_id: int
    loop: bool = False
    max_fps: float | None = None
    preview: str | None = None
    motion_threshold: float = 0.02
    stall_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    evidence_dir: str | None = None
    preroll: float = 10.0


def run_argv(args: RunArgs) -> list[str]:
    """The arguments after the worker command (see ``app.workerlink.launch``), ``run`` first."""
    argv = ["run", "--camera-id", str(args.camera_id), "--source", "-"]
    if args.loop:
        argv.append("--loop")
    if args.max_fps is not None:
        argv += ["--max-fps", f"{args.max_fps:g}"]
    if args.preview is not None:
        argv += ["--preview", args.preview]
    argv += [
        "--motion-threshold", f"{args.motion_threshold:g}",
        "--stall-timeout", f"{args.stall_timeout:g}",
        "--heartbeat-interval", f"{args.heartbeat_interval:g}",
    ]
    if args.evidence_dir is not None:
        argv += ["--evidence-dir", args.evidence_dir, "--preroll", f"{args.preroll:g}"]
    return argv


# ---------------------------------------------------------------- heartbeats

HEARTBEAT_TYPE = "heartbeat"
EVIDENCE_TYPE = "evidence"

SOURCE_STATES: tuple[SourceState, ...] = ("up", "down", "opening")

#: Longest ``error`` (and ``codec``) text in a heartbeat: keeps a line well below PIPE_BUF.
MAX_ERROR_CHARS = 500

FieldKind = Literal["float", "int", "bool", "source", "text"]

#: Every field of a heartbeat line and its kind (any of them may be null but ``type``).
HEARTBEAT_FIELDS: Mapping[str, FieldKind] = {
    "ts": "float",  # unix time
    "camera_id": "int",
    "fps": "float",  # analysed frames per second
    "decoded": "int",  # frames decoded (total)
    "dropped": "int",  # decoded frames skipped by the fps cap (total)
    "motion": "float",  # peak motion score since the previous heartbeat, 0..1
    "motion_active": "bool",
    "source": "source",
    "last_frame_age": "float",  # seconds since the last decoded frame
    "width": "int",
    "height": "int",
    "codec": "text",
    "preview_seq": "int",
    "reconnects": "int",
    "error": "text",
}


def heartbeat_message(**values: Any) -> dict[str, Any]:
    """The heartbeat line's object (the worker's side): exactly the contract's fields."""
    unknown = set(values) - set(HEARTBEAT_FIELDS)
    missing = set(HEARTBEAT_FIELDS) - set(values)
    if unknown or missing:
        raise ValueError(f"heartbeat fields: unknown {sorted(unknown)}, missing {sorted(missing)}")
    return {"type": HEARTBEAT_TYPE, **{key: values[key] for key in HEARTBEAT_FIELDS}}


def clean_heartbeat(raw: Mapping[str, Any], prev_source: object) -> dict[str, Any]:
    """The contract's heartbeat fields with their contract types (the station's side);
    anything else is dropped.

    A worker bug must not put a string where a number is read, or make the source
    state flap (an invalid ``source`` keeps the previous one).
    """
    hb: dict[str, Any] = {"type": HEARTBEAT_TYPE}
    for key, kind in HEARTBEAT_FIELDS.items():
        v = raw.get(key)
        if kind == "float":
            if isinstance(v, int | float) and not isinstance(v, bool):
                hb[key] = float(v)
        elif kind == "int":
            if isinstance(v, int) and not isinstance(v, bool):
                hb[key] = v
        elif kind == "bool":
            if isinstance(v, bool):
                hb[key] = v
        elif kind == "source":
            hb[key] = v if v in SOURCE_STATES else prev_source
        else:
            hb[key] = printable(mask_urls(v[:MAX_ERROR_CHARS])) if isinstance(v, str) else None
    return hb


# ---------------------------------------------------------------- the preview slot
#
# Layout (little-endian)::
#
#     header  struct "<4sHHQdIIIIQ" (HEADER_SIZE = 48 bytes):
#             magic b"ESPV", version 3,
#             wanted u16 (the width a reader asks for, 0 = none),
#             seq u64   (seqlock: odd while the writer is writing, even when complete),
#             ts f64    (unix time of the frame), width u32, height u32,
#             stride u32 (bytes per payload row),
#             wanted_height u16 (with ``wanted``: the box a reader draws the frame in, 0 = any
#                       height), reserved u16 (0),
#             wanted_until u64 (CLOCK_MONOTONIC ns, ``time.monotonic_ns()``: until when a
#                       reader wants frames; 0 = nobody. Readers write it, the writer reads it)
#     payload BGRX rows starting at PAYLOAD_OFFSET (= HEADER_SIZE): 4 bytes a pixel, blue,
#             green, red, 255 (a 32-bit 0xffRRGGBB word on little-endian: Qt's QImage RGB32,
#             which a window's backing store holds, so a tile draws a frame as it arrives);
#             room for PREVIEW_MAX_WIDTH x PREVIEW_MAX_HEIGHT.
#
# Previews on demand: the writer converts and publishes a frame only while ``wanted_until``
# lies in the future; a reader that reads pushes it INTEREST_HOLD seconds ahead (never back).
# CLOCK_MONOTONIC is one clock for every process of a Linux system (it is not per process), so a
# deadline written by the station's process is read correctly by the worker's.
# Versions 1 (36-byte header, previews always on) and 2 (RGB24 payload) are not read: a reader
# meeting another version sees no slot, and never writes into it.

MAGIC = b"ESPV"
VERSION = 3
HEADER_FORMAT = "<4sHHQdIIIHHQ"
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 48
PAYLOAD_OFFSET = HEADER_SIZE
PREVIEW_MAX_WIDTH = 1280
PREVIEW_MAX_HEIGHT = 720
PREVIEW_PIXEL_BYTES = 4  # BGRX
SLOT_SIZE = HEADER_SIZE + PREVIEW_MAX_WIDTH * PREVIEW_MAX_HEIGHT * PREVIEW_PIXEL_BYTES
HEADER = struct.Struct(HEADER_FORMAT)
WANT = struct.Struct("<H")  # the width a reader asks for
WANT_OFFSET = 6
WANT_HEIGHT = struct.Struct("<H")  # the height of the box a reader draws in (0: any)
WANT_HEIGHT_OFFSET = 36
SEQ = struct.Struct("<Q")
SEQ_OFFSET = 8
BODY = struct.Struct("<dIII")  # ts, width, height, stride
BODY_OFFSET = 16
WANTED_UNTIL = struct.Struct("<Q")  # CLOCK_MONOTONIC ns until which a reader wants frames
WANTED_UNTIL_OFFSET = 40
#: How long one mark of interest lasts (s). A tile polls at 10 Hz, so a shown tile renews it
#: many times over; a hidden or closed one lets it lapse and its worker stops converting within
#: this time. Long enough to ride over a GUI thread stalled by a slow paint or a dialog.
INTEREST_HOLD = 2.0
