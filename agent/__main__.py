"""`python -m agent` is `canhgac-agent`."""

import sys

from agent.cli import main

sys.exit(main())
