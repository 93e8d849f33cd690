"""A live MPEG-TS stream over HTTP on 127.0.0.1, to play a network camera in tests.

Each client gets its own real-time encode of a lavfi test pattern (H.264,
ultrafast/zerolatency, one keyframe a second) muxed into MPEG-TS. ``stop()``
closes the listening socket and every client connection (the stream "vanishes");
``start()`` brings it back on the same port. ``pause()`` keeps the connections
open but stops sending (a stalled camera) until ``resume()``. Thread-based and
bounded: ``stop()`` returns once every thread it started has ended.

    with StreamServer() as server:
        url = server.url            # http://127.0.0.1:PORT/stream.ts
        server.stop(); server.start()
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from fractions import Fraction
from typing import Any

import av
import av.error

__all__ = ["StreamServer", "StreamServerError"]


class StreamServerError(Exception):
    """The test stream server could not start or stop cleanly."""


class _SocketSink:
    """Minimal write-only file object for PyAV's muxer (no seeking)."""

    def __init__(self, wfile: Any) -> None:
        self._wfile = wfile

    def write(self, data: bytes) -> int:
        self._wfile.write(data)
        return len(data)

    def flush(self) -> None:
        self._wfile.flush()


class _Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = False  # server_close() joins handler threads
    block_on_close = True
    owner: StreamServer


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        owner = self.server.owner
        if self.path.split("?", 1)[0] != owner.path:
            self.send_error(404, "no such stream")
            return
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        owner._register(self.connection)
        try:
            owner._stream_to(_SocketSink(self.wfile))
        except (OSError, av.error.FFmpegError, ValueError):
            pass  # client went away or the server is stopping
        finally:
            owner._unregister(self.connection)


class StreamServer:
    """Serve ``http://127.0.0.1:PORT/stream.ts`` until ``stop()``; ``start()`` again at will."""

    def __init__(
        self,
        *,
        width: int = 320,
        height: int = 180,
        fps: int = 15,
        pattern: str = "testsrc2",
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/stream.ts",
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.pattern = pattern
        self.host = host
        self.port = port
        self.path = path
        self.clients_served = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        if not self.port:
            raise StreamServerError("the stream server has not been started yet (no port)")
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> StreamServer:
        if self._server is not None:
            raise StreamServerError("stream server already running")
        deadline = time.monotonic() + 5.0
        while True:
            try:
                server = _Server((self.host, self.port), _Handler)
                break
            except OSError as exc:  # the old port may linger briefly
                if time.monotonic() > deadline:
                    raise StreamServerError(
                        f"cannot listen on {self.host}:{self.port}: {exc}"
                    ) from exc
                time.sleep(0.05)
        server.owner = self
        self.port = server.server_address[1]
        self._stop.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="stream-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every client connection; wait for all threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise StreamServerError("stream server thread did not stop")
        self._server = None
        self._thread = None

    def pause(self) -> None:
        """Stop sending data on every connection (new ones too) without closing them."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def __enter__(self) -> StreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handler side --------------------------------------------------------

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
            self.clients_served += 1

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _stream_to(self, sink: _SocketSink) -> None:
        fps = self.fps
        tb = Fraction(1, fps)
        graph = f"{self.pattern}=size={self.width}x{self.height}:rate={fps},format=yuv420p"
        with av.open(graph, format="lavfi") as src:
            out = av.open(sink, "w", format="mpegts")
            try:
                stream = out.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
                stream.time_base = tb
                stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(fps)}
                start = time.monotonic()
                for index, frame in enumerate(src.decode(video=0)):
                    if not self._running.is_set():
                        while not self._running.wait(0.05):
                            if self._stop.is_set():
                                return
                        start = time.monotonic() - index / fps  # no burst after a pause
                    delay = start + index / fps - time.monotonic()
                    if self._stop.wait(max(0.0, delay)):
                        break
                    frame.pts, frame.time_base = index, tb
                    for packet in stream.encode(frame):
                        out.mux(packet)
            finally:
                with contextlib.suppress(OSError, av.error.FFmpegError, ValueError):
                    out.close()
