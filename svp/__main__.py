"""``python -m svp``: the same as the ``svp`` command."""

import sys

from svp.cli import main

sys.exit(main())
