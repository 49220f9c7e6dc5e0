"""The one interface every probe implements: `collect()` returns its report section."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import Field

from canhgac_common.config import Duration, StrictModel

__all__ = ["Probe", "ProbeOptions"]


class ProbeOptions(StrictModel):
    """Keys every probe accepts under `probes.<name>:`; a probe with more subclasses this."""

    enabled: bool = True
    # None: the report interval the collector gave at enrollment (15 s by default).
    interval: Duration | None = Field(default=None, gt=0)


class Probe(ABC):
    """A probe observes one aspect of the machine.

    `name` is also the field of `agent.model.Report` that carries the section.
    `collect()` raises `agent.errors.ProbeFailed` (or any exception) when it cannot observe;
    the runner turns that into an error entry and carries on with the other probes.
    """

    name: ClassVar[str]

    @classmethod
    def from_options(cls, options: ProbeOptions) -> Probe:
        """The probe as configured; probes with options of their own override this."""
        del options
        return cls()

    @abstractmethod
    def collect(self) -> object:
        """Observe now and return this probe's section of the report."""
