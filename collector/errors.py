"""The collector's exception set; messages are one clear line a person can act on."""

from __future__ import annotations

import errno
import socket

from canhgac_common.config import ConfigError
from canhgac_common.i18n import gettext_ as _

__all__ = [
    "AuthError",
    "CollectorError",
    "ConfigError",
    "InvalidRequest",
    "NotFoundError",
    "RuleError",
    "StoreError",
    "cannot_listen",
]


class CollectorError(Exception):
    """Base for errors the collector CLI reports as one line and a non-zero exit."""


class StoreError(CollectorError):
    """The store cannot be opened, is from a newer version, or a write failed."""


class NotFoundError(CollectorError):
    """A token or agent named on the command line does not exist."""


class AuthError(CollectorError):
    """A token or credential is unknown, expired or revoked (the message says which).

    `reason`, for an agent's credential, is the word of `canhgac_common.refusal` the status
    details start with, so the agent can tell a revocation from a credential not known."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidRequest(CollectorError):
    """A request from the wire is unusable as sent (a field too long); the message says why."""


class RuleError(CollectorError):
    """A rule pack is unusable; one line per problem, each naming file, line and rule id."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def cannot_listen(key: str, address: str, error: OSError | None = None) -> ConfigError:
    """The error for a listen address (`grpc_listen`, `http_listen`) that cannot be bound,
    saying when the port is taken and how to choose another. Without the OSError (gRPC only
    says it failed) the address is bound once more here to learn why."""
    if error is None:
        host, _sep, port = address.rpartition(":")
        try:
            socket.create_server((host.strip("[]") or "0.0.0.0", int(port))).close()  # noqa: S104
        except (OSError, ValueError) as e:
            error = e if isinstance(e, OSError) else OSError(str(e))
    if error is not None and error.errno == errno.EADDRINUSE:
        why = _(
            "the port is in use (another collector still running, or another program): stop "
            "it, or choose a free port with {key}: HOST:PORT in the config"
        ).format(key=key)
    else:
        why = error.strerror or str(error) if error is not None else _("refused")
    return ConfigError(
        _("{key} {address}: cannot listen: {why}").format(key=key, address=address, why=why)
    )
