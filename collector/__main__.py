"""`python -m collector` is `canhgac-collector`."""

import sys

from collector.launch import main

sys.exit(main())
