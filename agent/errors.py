"""The agent's exception set; messages are one clear line a person can act on."""

from __future__ import annotations

from canhgac_common.yamlfile import ConfigError

__all__ = ["AgentError", "ConfigError", "NotEnrolledError", "ProbeFailed", "SpoolError"]


class AgentError(Exception):
    """Base for errors the agent CLI reports as one line and a non-zero exit."""


class ProbeFailed(AgentError):
    """A probe could not observe what it is for; reported as an error entry, never as "off"."""


class NotEnrolledError(AgentError):
    """The agent has no credential yet: run `canhgac-agent enroll`."""


class SpoolError(AgentError):
    """The local spool cannot be opened or written (disk full, permissions, corruption)."""
