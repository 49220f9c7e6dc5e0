"""The one interface every probe implements: `collect()` returns its report section."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

__all__ = ["Probe"]


class Probe(ABC):
    """A probe observes one aspect of the machine.

    `name` is also the field of `agent.model.Report` that carries the section.
    `collect()` raises `agent.errors.ProbeFailed` (or any exception) when it cannot observe;
    the runner turns that into an error entry and carries on with the other probes.
    """

    name: ClassVar[str]

    @abstractmethod
    def collect(self) -> object:
        """Observe now and return this probe's section of the report."""
