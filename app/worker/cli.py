"""Worker command line: ``run`` (the capture process) and ``probe`` (inspect a source).

Exit codes (the worker protocol, ``app.workerlink.protocol``):

- 0  clean stop (SIGTERM/SIGINT, end of a non-looped file, probe success)
- 78 configuration error (bad arguments, unsupported URL, missing file, no
     room for the preview slot) — the supervisor never retries it
- 1  crash / probe failure

stdout carries only JSON lines; stderr carries ``LEVEL message`` log lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from app.workerlink.protocol import EXIT_CONFIG, EXIT_CRASH, EXIT_OK, MAX_SOURCE_BYTES

if TYPE_CHECKING:  # pragma: no cover - the worker imports these lazily
    from app.worker.evidence import EvidenceDesk
    from app.worker.heartbeat import CaptureStats, HeartbeatWriter
    from app.worker.motion import MotionDetector
    from app.worker.preview import PreviewWriter
    from app.worker.sources import SourceSpec

__all__ = [
    "EXIT_CONFIG",
    "EXIT_CRASH",
    "EXIT_OK",
    "ConfigError",
    "UsageError",
    "build_parser",
    "main",
]

STOP_JOIN_TIMEOUT = 0.5  # how long to wait for the capture thread after a stop request
PARENT_POLL_INTERVAL = 0.25
_PR_SET_PDEATHSIG = 1

log = logging.getLogger("app.worker")

#: set by SIGUSR1: the station left an evidence request (snapshot/clip) in --evidence-dir
EVIDENCE_WAKE = threading.Event()


class ConfigError(Exception):
    """A configuration problem: exit 78 with this message on one stderr line."""


class UsageError(ConfigError):
    """Bad command-line arguments."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number > 0")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _fraction(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _preview_width(text: str) -> int:
    from app.workerlink.protocol import PREVIEW_MAX_WIDTH

    value = _non_negative_int(text)
    if not 16 <= value <= PREVIEW_MAX_WIDTH:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 16 and {PREVIEW_MAX_WIDTH}")
    return value


def _decode_threading(text: str) -> object:
    from app.worker.capture import parse_decode_threading

    try:
        return parse_decode_threading(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="worker", description="Edge Station camera worker")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="capture a source and report heartbeats on stdout")
    run.add_argument("--camera-id", type=_non_negative_int, required=True)
    run.add_argument(
        "--source",
        required=True,
        help="test://…, file path, rtsp://, http(s)://, /dev/videoN; '-' reads it from the "
        "first line of stdin (how the supervisor passes it: a password never shows in ps)",
    )
    run.add_argument("--loop", action="store_true", help="restart a file source at its end")
    run.add_argument(
        "--max-fps",
        type=_non_negative_float,
        default=0.0,
        help="analyse at most this many frames per second (0: no cap)",
    )
    run.add_argument("--preview", default=None, help="path of the shared-memory preview slot")
    run.add_argument("--preview-width", type=_preview_width, default=320)
    run.add_argument("--preview-fps", type=_non_negative_float, default=10.0)
    run.add_argument("--motion-threshold", type=_fraction, default=0.02)
    run.add_argument("--motion-warmup", type=_non_negative_int, default=10)
    run.add_argument("--stall-timeout", type=_positive_float, default=10.0)
    run.add_argument("--heartbeat-interval", type=_positive_float, default=1.0)
    run.add_argument(
        "--evidence-dir",
        default=None,
        help="directory the station leaves snapshot/clip requests in (then SIGUSR1); see app.worker.evidence",
    )
    run.add_argument(
        "--preroll",
        type=_non_negative_float,
        default=10.0,
        help="seconds of packets kept in memory for clips (0: no clips)",
    )
    run.add_argument(
        "--preroll-max-mb",
        type=_positive_float,
        default=64.0,
        help="memory bound of the pre-roll buffer (MB)",
    )
    run.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )
    run.add_argument(
        "--decode-threading",
        type=_decode_threading,
        default=None,
        help="TYPE[:COUNT] (NONE, SLICE, FRAME, AUTO), 'default' (PyAV's) or 'box' (the default: "
        "chosen for this machine's cores; benchmarks compare the others)",
    )
    run.add_argument(
        "--no-pace",
        action="store_true",
        help="decode files and test patterns as fast as possible (benchmarks)",
    )

    probe = sub.add_parser("probe", help="print one JSON line describing a source")
    probe.add_argument("url", help="the source; '-' reads it from the first line of stdin")
    probe.add_argument("--timeout", type=_positive_float, default=5.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m app.worker`` and of the frozen bundle's ``worker``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    wake = threading.Event()
    if args_list[:1] == ["run"]:
        # Handle TERM/INT before anything slow (imports, parsing) can happen.
        _install_signal_handlers(stop, wake)
    # A worker forked by the launcher starts with TERM blocked (app.worker.zygote): a stop sent
    # meanwhile is delivered now, to the handler just installed (or by default, for a probe).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    try:
        args = build_parser().parse_args(args_list)
    except UsageError as exc:
        _config_error_line(str(exc))
        return EXIT_CONFIG
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.command == "probe":
        _die_with_parent(_expected_parent(), threading.Event(), threading.Event())
    try:
        if args.command == "probe":
            args.url = _source_arg(args.url)
        else:
            args.source = _source_arg(args.source)
    except ConfigError as exc:
        if args.command == "probe":
            return _probe_result({"ok": False, "error": str(exc)}, EXIT_CONFIG)
        _config_error_line(str(exc))
        return EXIT_CONFIG
    if args.command == "probe":
        return probe_command(args.url, args.timeout)
    return run_command(args, stop, wake)


MAX_STDIN_SOURCE = MAX_SOURCE_BYTES


def _source_arg(value: str) -> str:
    """The source as given, or for ``-`` the first line of stdin (a private channel)."""
    if value != "-":
        return value
    try:
        raw = sys.stdin.buffer.readline(MAX_STDIN_SOURCE + 1)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the source from stdin: {exc}") from exc
    if len(raw) > MAX_STDIN_SOURCE:
        raise ConfigError(f"the source on stdin is longer than {MAX_STDIN_SOURCE} bytes")
    source = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    if not source.strip():
        raise ConfigError("--source -: no source on stdin")
    return source


# ---------------------------------------------------------------------------
# run


def run_command(args: argparse.Namespace, stop: threading.Event, wake: threading.Event) -> int:
    from app.worker.heartbeat import (
        CaptureStats,
        HeartbeatBuilder,
        HeartbeatWriter,
        LineSink,
        SinkLogHandler,
    )

    # stdout/stderr never block the worker: a supervisor that stops reading gets
    # dropped lines, and SIGTERM still stops us within a second.
    sys.stdout.flush()
    sys.stderr.flush()
    _setup_logging(args.log_level, SinkLogHandler(LineSink(sys.stderr.fileno())))
    _die_with_parent(_expected_parent(), stop, wake)

    from app.worker.motion import MotionConfig, MotionDetector
    from app.worker.preview import PreviewError, PreviewWriter
    from app.worker.sources import (
        SourceError,
        check_source_available,
        parse_source_url,
    )

    io_timeout = min(max(args.stall_timeout / 2, 1.0), 10.0)
    try:
        spec = parse_source_url(args.source, io_timeout=io_timeout)
        check_source_available(spec)
        motion = MotionDetector(
            MotionConfig(threshold=args.motion_threshold, warmup=args.motion_warmup)
        )
    except (SourceError, ValueError) as exc:
        _config_error_line(str(exc))
        return EXIT_CONFIG
    preview: PreviewWriter | None = None
    if args.preview:
        try:
            preview = PreviewWriter(
                args.preview, max_width=args.preview_width, max_fps=args.preview_fps
            )
        except (PreviewError, OSError, ValueError) as exc:
            _config_error_line(f"preview slot: {exc}")
            return EXIT_CONFIG

    stats = CaptureStats()
    writer = HeartbeatWriter(LineSink(sys.stdout.fileno()))
    builder = HeartbeatBuilder(
        args.camera_id, stats, (lambda: preview.seq) if preview else (lambda: 0)
    )
    try:
        writer.write(builder.build())  # first heartbeat right away: "opening"
    except (BrokenPipeError, ValueError):
        return _stdout_gone(preview)
    log.info("worker for camera %d started on %s", args.camera_id, spec.display)
    evidence = _evidence_desk(args, writer)

    outcome: dict[str, Any] = {}
    capture_thread = threading.Thread(
        target=_capture_main,
        name="capture",
        args=(spec, args, stop, wake, motion, preview, stats, io_timeout, outcome, evidence),
        daemon=True,
    )
    capture_thread.start()
    if evidence.directory is not None:
        threading.Thread(target=evidence.run, args=(stop,), name="evidence", daemon=True).start()

    interval = args.heartbeat_interval
    next_beat = time.monotonic() + interval
    try:
        while True:
            if wake.wait(max(0.0, next_beat - time.monotonic())):
                break
            writer.write(builder.build())
            next_beat += interval
            now = time.monotonic()
            if next_beat < now:  # we were suspended: do not fire a burst
                next_beat = now + interval
    except (BrokenPipeError, ValueError):
        stop.set()
        return _stdout_gone(preview)

    stop.set()
    capture_thread.join(STOP_JOIN_TIMEOUT)
    code = _exit_code(outcome)
    try:
        writer.write(builder.build())  # final counts
    except (BrokenPipeError, ValueError):
        pass
    if capture_thread.is_alive():
        # Blocked inside FFmpeg (open/read on a dead network source): the
        # process must still stop promptly. Nothing else needs cleaning up.
        log.info("stopping without waiting for the blocked source read")
        _flush_std()
        os._exit(code)
    if preview is not None:
        preview.close()
    evidence.close()
    log.info("worker for camera %d stopped (exit %d)", args.camera_id, code)
    # Everything the worker owns is closed: leave now rather than through the interpreter's
    # teardown, where a library's threads (FFmpeg's decode threads with their logging hooks,
    # PyAV issue 909) can keep a stopping worker alive past the supervisor's grace period.
    _flush_std()
    os._exit(code)


def _capture_main(
    spec: SourceSpec,
    args: argparse.Namespace,
    stop: threading.Event,
    wake: threading.Event,
    motion: MotionDetector,
    preview: PreviewWriter | None,
    stats: CaptureStats,
    io_timeout: float,
    outcome: dict[str, Any],
    evidence: EvidenceDesk | None = None,
) -> None:
    try:
        from app.worker.capture import Capture, CaptureConfig

        if args.log_level == "DEBUG":
            import av.logging

            av.logging.set_level(av.logging.WARNING)
        config = CaptureConfig(
            max_fps=args.max_fps or None,
            loop=args.loop,
            pace=not args.no_pace,
            io_timeout=io_timeout,
            open_timeout=max(2 * io_timeout, 5.0),
            threading=args.decode_threading,
        )
        outcome["result"] = Capture(
            spec, config, stop, motion=motion, preview=preview, stats=stats, evidence=evidence
        ).run()
    except BaseException as exc:  # reported by the main thread
        outcome["error"] = exc
    finally:
        wake.set()


def _exit_code(outcome: dict[str, Any]) -> int:
    exc = outcome.get("error")
    if exc is None:
        return EXIT_OK
    from app.worker.capture import CaptureConfigError

    if isinstance(exc, CaptureConfigError):
        _config_error_line(str(exc))
        return EXIT_CONFIG
    log.critical("worker crashed: %s: %s", type(exc).__name__, exc, exc_info=exc)
    return EXIT_CRASH


def _stdout_gone(preview: PreviewWriter | None) -> int:
    log.error("stdout was closed by the supervisor; exiting")
    try:  # avoid a second BrokenPipeError when the interpreter flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    if preview is not None:
        try:
            preview.close()
        except (BufferError, OSError):
            pass
    _flush_std()
    os._exit(EXIT_CRASH)


def _install_signal_handlers(stop: threading.Event, wake: threading.Event) -> None:
    def handler(signum: int, _frame: object) -> None:
        stop.set()
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    if hasattr(signal, "SIGUSR1"):  # an evidence request; never the default action (terminate)
        signal.signal(signal.SIGUSR1, lambda _s, _f: EVIDENCE_WAKE.set())


def _evidence_desk(args: argparse.Namespace, writer: HeartbeatWriter) -> EvidenceDesk:
    from app.worker.evidence import EvidenceDesk

    directory = Path(args.evidence_dir) if args.evidence_dir else None
    desk = EvidenceDesk(directory, writer.write, preroll=args.preroll,
                        max_bytes=int(args.preroll_max_mb * 1024 * 1024))
    desk.wake = EVIDENCE_WAKE
    return desk


def _expected_parent() -> int:
    """The station that spawned us (it says so in the environment), else our parent now.

    A parent that died before this process got here has already been replaced by
    init or a subreaper: comparing with the recorded pid catches that too.
    """
    recorded = os.environ.get("EDGE_STATION_SUPERVISOR_PID", "")
    return int(recorded) if recorded.isdigit() else os.getppid()


def _die_with_parent(parent: int, stop: threading.Event, wake: threading.Event) -> None:
    """PR_SET_PDEATHSIG(SIGKILL) on Linux, plus a thread that stops us when the
    parent changes (the signal fires when the spawning *thread* ends and does not
    exist off Linux)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl(PR_SET_PDEATHSIG) unavailable: %s", exc)

    def watch() -> None:
        while os.getppid() == parent:
            if stop.wait(PARENT_POLL_INTERVAL):
                return
        log.warning("parent process %d went away; stopping", parent)
        stop.set()
        wake.set()
        time.sleep(1.0)  # the main thread normally exits well before this
        _flush_std()
        os._exit(EXIT_CRASH)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _setup_logging(level: str, handler: logging.Handler | None = None) -> None:
    handler = handler or logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _config_error_line(message: str) -> None:
    try:
        sys.stderr.write(f"ERROR configuration error: {' '.join(message.split())}\n")
        sys.stderr.flush()
    except OSError:  # stderr closed or full (non-blocking): the exit code still tells
        pass


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


# ---------------------------------------------------------------------------
# probe


def probe_command(url: str, timeout: float) -> int:
    """Print one JSON line describing *url*; 0 on success, 1 on failure, 78 for a bad URL."""
    from app.worker.sources import (
        InvalidSourceError,
        SourceNotFoundError,
        check_source_available,
        parse_source_url,
    )

    try:
        spec = parse_source_url(url, io_timeout=timeout)
    except InvalidSourceError as exc:
        return _probe_result({"ok": False, "error": str(exc)}, EXIT_CONFIG)
    try:
        check_source_available(spec)
    except SourceNotFoundError as exc:
        return _probe_result({"ok": False, "error": str(exc)}, EXIT_CRASH)

    def too_slow() -> None:
        _probe_result(
            {"ok": False, "error": f"probing {spec.display} timed out after {timeout:g} s"},
            EXIT_CRASH,
        )
        _flush_std()
        os._exit(EXIT_CRASH)

    watchdog = threading.Timer(timeout + 1.0, too_slow)
    watchdog.daemon = True
    watchdog.start()
    try:
        result = _probe(spec, timeout)
    finally:
        watchdog.cancel()
    return _probe_result(result, EXIT_OK if result["ok"] else EXIT_CRASH)


def _probe(spec: SourceSpec, timeout: float) -> dict[str, Any]:
    import av
    import av.error

    from app.worker.capture import codec_label, describe_av_error

    try:
        container = spec.open((timeout, timeout))
    except (av.error.FFmpegError, OSError) as exc:
        return {"ok": False, "error": f"cannot open {spec.display}: {describe_av_error(exc, spec)}"}
    try:
        if not container.streams.video:
            return {"ok": False, "error": f"{spec.display} has no video stream"}
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height, pix_fmt = ctx.width, ctx.height, ctx.pix_fmt
        if not (width and height and pix_fmt):
            # Some streams only tell after the first decoded frame.
            deadline = time.monotonic() + timeout
            frame = next(iter(container.decode(stream)), None)
            if frame is None or time.monotonic() > deadline:
                return {"ok": False, "error": f"{spec.display}: no decodable video frame"}
            width, height, pix_fmt = frame.width, frame.height, frame.format.name
        rate = stream.average_rate or stream.guessed_rate
        duration: float | None = None
        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        elif stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        return {
            "ok": True,
            "codec": codec_label(ctx.name),
            "width": int(width),
            "height": int(height),
            "fps": round(float(rate), 3) if rate else None,
            "pix_fmt": str(pix_fmt),
            "duration": round(duration, 3) if duration is not None else None,
        }
    except (av.error.FFmpegError, OSError) as exc:
        return {"ok": False, "error": f"cannot read {spec.display}: {describe_av_error(exc, spec)}"}
    finally:
        try:
            container.close()
        except (av.error.FFmpegError, OSError):
            pass


def _probe_result(result: dict[str, Any], code: int) -> int:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return code
