"""`python -I -m yurt.drivers.exec <isolation.json>`: the isolating launcher (see launcher.py)."""

import sys

from .launcher import main

sys.exit(main(sys.argv[1:]))
