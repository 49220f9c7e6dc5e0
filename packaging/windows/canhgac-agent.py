"""PyInstaller's entry for canhgac-agent.exe: the CLI, or with `windows-service` first, the
service host (the MSI's ServiceInstall runs `canhgac-agent.exe windows-service`)."""

import sys

if sys.argv[1:2] == ["windows-service"]:
    from agent.service.windows import dispatch

    sys.exit(dispatch(sys.argv[2:]))

from agent.cli import main

sys.exit(main())
