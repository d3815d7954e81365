"""``python -m bench.search``: see the package's docstring and ``--help``."""

import sys

from bench.search.cli import main

sys.exit(main())
