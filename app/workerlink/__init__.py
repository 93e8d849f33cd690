"""The station's side of the camera worker: what the supervisor, the station and the UI
need to talk to a worker without being one.

- ``app.workerlink.protocol`` -- the contract both sides import: exit codes, the heartbeat
  line's fields, the preview slot's layout and the ``run`` command line;
- ``app.workerlink.preview`` -- the preview slot reader (the worker writes it);
- ``app.workerlink.launch`` -- the command that starts a worker process.

``app.worker`` is the child program itself (PyAV capture, motion, heartbeats).
"""
