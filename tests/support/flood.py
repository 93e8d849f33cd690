"""A flood of connections against the station's API, as a program for another process.

``python -c FLOOD PORT N [SECONDS]``: N idle connections (reconnected as the server closes them) and,
when N > 0, 20 more that send one byte at a time and never a whole request; prints ``ready K`` (K
idle connections made) and keeps the pressure on for SECONDS (default 60), or until its stdin closes.
Used by the connection-cap test and, full size, by ``tests/bench/bench_hardening.py``.
"""

from __future__ import annotations

import textwrap

FLOOD = textwrap.dedent("""
    import resource, select, socket, sys, time
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port, n = int(sys.argv[1]), int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    def connect(timeout):
        # non-blocking once connected: a recv on a socket with a timeout waits that long first
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError:
            return None
        s.setblocking(False)
        return s
    idle = [connect(5) for _ in range(n)]  # a refused one (None) is retried by the loop below
    slow = [s for s in (connect(5) for _ in range(20 if n else 0)) if s is not None]
    print("ready", sum(1 for s in idle if s is not None), flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end and not sys.stdin.closed:
        for s in slow:  # one byte at a time, never a whole request
            try:
                s.send(b"G")
            except OSError:
                pass
        for i, s in enumerate(idle):  # reconnect what the server closed: keep the pressure on
            try:
                if s is None or s.recv(1, socket.MSG_DONTWAIT) == b"":
                    raise OSError
            except BlockingIOError:
                pass
            except OSError:
                if s is not None:
                    s.close()
                idle[i] = connect(1)
        # until the server closes one (or the next slow byte is due); poll, as select() takes
        # no descriptor above 1,023
        p = select.poll()
        for s in idle:
            if s is not None:
                p.register(s, select.POLLIN)
        p.poll(200)
""")
