"""How to start a worker process (used by the supervisor and by probes), and the worker launcher."""

from __future__ import annotations

import sys


def worker_command() -> list[str]:
    """The argv prefix that starts a worker; append ``run …`` or ``probe …``.

    From source: ``[python, "-m", "app.worker"]``. In a frozen bundle the bundle's
    own executable has a ``worker`` subcommand that calls ``app.worker.cli.main``.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "worker"]
    return [sys.executable, "-m", "app.worker"]


def launcher_command() -> list[str]:
    """The argv prefix that starts the worker launcher (``app.worker.zygote``); append
    ``--control-fd N``. In a frozen bundle: the bundle's ``worker-zygote`` subcommand."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "worker-zygote"]
    return [sys.executable, "-m", "app.worker.zygote"]
