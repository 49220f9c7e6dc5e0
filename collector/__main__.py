"""`python -m collector` is `canhgac-collector`."""

import sys

from collector.cli import main

sys.exit(main())
