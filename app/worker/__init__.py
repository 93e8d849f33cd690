"""The camera worker process: PyAV capture, motion, heartbeats, preview frames.

Run it as ``python -m app.worker run --camera-id 1 --source test://moving``
(see ``app.workerlink.launch.worker_command``). Importing this package is cheap and
has no side effects; the heavy modules (PyAV, numpy) load only when needed.
"""
