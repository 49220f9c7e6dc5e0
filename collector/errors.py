"""The collector's exception set; messages are one clear line a person can act on."""

from __future__ import annotations

from canhgac_common.config import ConfigError

__all__ = [
    "AuthError",
    "CollectorError",
    "ConfigError",
    "InvalidRequest",
    "NotFoundError",
    "RuleError",
    "StoreError",
]


class CollectorError(Exception):
    """Base for errors the collector CLI reports as one line and a non-zero exit."""


class StoreError(CollectorError):
    """The store cannot be opened, is from a newer version, or a write failed."""


class NotFoundError(CollectorError):
    """A token or agent named on the command line does not exist."""


class AuthError(CollectorError):
    """A token or credential is unknown, expired or revoked (the message says which)."""


class InvalidRequest(CollectorError):
    """A request from the wire is unusable as sent (a field too long); the message says why."""


class RuleError(CollectorError):
    """A rule pack is unusable; one line per problem, each naming file, line and rule id."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
