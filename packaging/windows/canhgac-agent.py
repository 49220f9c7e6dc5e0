"""PyInstaller's entry for canhgac-agent.exe: the CLI, or with `windows-service` first, the
service host (the MSI's ServiceInstall runs `canhgac-agent.exe windows-service`)."""

import sys

if sys.argv[1:2] == ["windows-service"]:
    from agent.service.windows import dispatch

    sys.exit(dispatch(sys.argv[2:]))

from agent.cli import main

# Messages are Vietnamese first. A console gets them through the wide-character API, but a pipe
# or a file (`status > out.txt`, a monitoring tool reading `status`) gets the ANSI code page
# (cp1252 has no "ố"), where printing them raised UnicodeEncodeError: UTF-8 there instead.
for stream in (sys.stdout, sys.stderr):
    if stream is not None and not stream.isatty():
        stream.reconfigure(encoding="utf-8")

sys.exit(main())
