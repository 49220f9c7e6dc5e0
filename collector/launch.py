"""`canhgac-collector`'s entry point: what the process must set before grpc is imported."""

from __future__ import annotations

import os

__all__ = ["main"]


def main() -> int:
    """The collector CLI, with grpc's core logging off unless GRPC_VERBOSITY says otherwise.

    grpc's core writes its own lines to stderr (`E1203 … add_port.cc:83] Failed to add port
    …` before our "grpc_listen …: the port is in use"), in its own format, outside our
    logging. It reads GRPC_VERBOSITY once, when grpc is imported (grpcio ≥ 1.65 maps NONE to
    absl's "log nothing"), so it is set here, before the CLI's imports reach grpc. Every
    failure that matters reaches us as an exception or a status and is logged by us; an
    operator chasing a core problem runs with GRPC_VERBOSITY=ERROR (or DEBUG)."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from collector.cli import main as cli  # noqa: PLC0415 (after the variable is set)

    return cli()
