"""Limits that keep any number of clients from touching supervision: a connection cap, a deadline on
reading a whole request, a keep-alive timeout; and the edge refusals of bodies (short, unencodable).

Each test starts its own server on the shared station with small limits, so the limits are reached
quickly; the flood test runs its clients in another process, so the station's descriptors are counted
alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from app.api import ApiClient, ApiServer
from app.domain.operations import CameraRef
from tests.api.conftest import wait_for
from tests.support.flood import FLOOD


@pytest.fixture
def small(live, tmp_path) -> Iterator[ApiServer]:
    """A second API on the shared station: 8 connections, a 1 s request deadline, 1 s keep-alive."""
    server = ApiServer(live.station, port=0, max_connections=8, request_timeout=1.0, keep_alive=1.0,
                       discovery=tmp_path / "api.json").start()
    yield server
    server.stop()


def _closed_by_server(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), or None if it is still open after ``within``."""
    t0 = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - t0 < within:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - t0
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return None


def _request(token: str, path: str = "/api/v1/cameras") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()


def test_one_byte_at_a_time_does_not_keep_a_connection(small):
    """The request's head must arrive within the deadline, however the bytes trickle in."""
    slow = socket.create_connection(("127.0.0.1", small.port))
    try:
        t0 = time.monotonic()
        data = _request(small.token)
        closed = None
        for b in data[:-4]:  # never completes the head; one byte every 0.3 s (every 25 s, scaled down)
            try:
                slow.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - t0
                break
            closed = _closed_by_server(slow, 0.3)
            if closed is not None:
                closed = time.monotonic() - t0
                break
        assert closed is not None, "the server kept a connection that sends one byte at a time"
        assert closed < small.request_timeout + 1.0
    finally:
        slow.close()


def test_a_silent_connection_and_an_idle_keep_alive_are_closed(small):
    silent = socket.create_connection(("127.0.0.1", small.port))
    kept = socket.create_connection(("127.0.0.1", small.port))
    try:
        kept.sendall(_request(small.token))
        kept.settimeout(5)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed_by_server(silent, small.request_timeout + 2.0) is not None
        assert _closed_by_server(kept, small.keep_alive + 2.0) is not None
    finally:
        silent.close()
        kept.close()


def test_a_body_shorter_than_its_content_length_is_400_within_the_deadline(small):
    s = socket.create_connection(("127.0.0.1", small.port))
    try:
        s.sendall(b"POST /api/v1/alerts/rules HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  + f"Authorization: Bearer {small.token}\r\n".encode()
                  + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ")
        t0 = time.monotonic()
        s.settimeout(small.request_timeout + 3)
        answer = s.recv(65536)
        elapsed = time.monotonic() - t0
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"ended before its Content-Length" in answer
        assert elapsed < small.request_timeout + 1.5
        assert _closed_by_server(s, 2.0) is not None  # and the connection is not reused
    finally:
        s.close()


def test_connections_beyond_the_cap_are_refused_and_the_api_recovers(small, live):
    me = psutil.Process()
    before = me.num_fds()
    socks = []
    try:
        for _ in range(60):
            socks.append(socket.create_connection(("127.0.0.1", small.port)))

        def peer_closed(s: socket.socket) -> bool:
            try:
                return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                return False
            except OSError:
                return True

        def server_side() -> int:  # the server's side of these connections
            return me.num_fds() - before - len(socks)

        # every connection accepted (held) or closed at accept by the server
        wait_for(lambda: server_side() + sum(peer_closed(s) for s in socks) >= len(socks), timeout=10,
                 what="the server to take or refuse every connection")
        held = server_side()
        assert held <= 2 * small.max_connections + 2, held
        # a request over the limit gets 503 or a closed connection, never a hang
        extra = socket.create_connection(("127.0.0.1", small.port))
        extra.settimeout(5)
        extra.sendall(_request(small.token))
        try:
            head = extra.recv(200)
        except ConnectionResetError:
            head = b""
        extra.close()
        assert head == b"" or head.startswith(b"HTTP/1.1 503"), head
    finally:
        for s in socks:
            s.close()
    # once the idle ones are gone, the API answers again
    c = ApiClient(small.url, small.token, timeout=5)
    try:
        assert wait_for(lambda: _ok(c), timeout=10, what="the API answering after the flood")
    finally:
        c.close()


def _ok(c: ApiClient) -> bool:
    try:
        return c.cameras().status == 200
    except Exception:
        c.close()
        return False


@pytest.mark.slow
def test_a_killed_worker_respawns_while_the_api_is_flooded(live):
    """1,100 connections (idle and one-byte-at-a-time) against the station's own API: its descriptors stay
    bounded and supervision restarts a killed worker within the restart policy's first backoff."""
    st = live.station
    cam = live.demo["Lobby"]
    st.call("start_camera", CameraRef(cam), force="domain")
    pid = wait_for(lambda: (s := st.call("camera_status", CameraRef(cam))).state.value == "running" and s.pid,
                   what="the camera running")
    me = psutil.Process()
    base = me.num_fds()
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(live.api.port), "1100"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        line = flood.stdout.readline()
        assert line.startswith("ready"), line
        peak = me.num_fds()
        assert peak - base <= 2 * live.api.max_connections + 8, (base, peak)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        new = wait_for(lambda: (s := st.call("camera_status", CameraRef(cam))).state.value == "running"
                       and s.pid not in (None, pid) and s.pid, timeout=20, what="the worker respawned")
        respawn = time.monotonic() - t0
        assert flood.poll() is None, "the flood ended before the worker was back"
        assert new != pid
        # the first backoff is 1 s (+10 % jitter); starting a worker takes well under a few seconds
        assert respawn < 10, respawn
        assert me.num_fds() - base <= 2 * live.api.max_connections + 8
    finally:
        flood.stdin.close()
        flood.kill()
        flood.wait(10)
        flood.stdout.close()
    c = ApiClient(live.api.url, live.api.token, timeout=5)
    try:
        assert wait_for(lambda: _ok(c), timeout=15, what="the API answering after the flood")
    finally:
        c.close()
