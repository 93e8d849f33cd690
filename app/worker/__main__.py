"""``python -m app.worker run|probe …``."""

import sys

from app.worker.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
