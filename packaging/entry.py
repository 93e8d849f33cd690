"""Entry point of the frozen bundle: the same program as ``edge-station`` / ``python -m app``.

The bundle's executable is also its own worker interpreter: ``edge-station worker run ...``
(see ``app.workerlink.launch.worker_command``) and its own probe for the Qt check
(``edge-station _qtcheck``, see ``app.platform.doctor.self_command``).
"""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
