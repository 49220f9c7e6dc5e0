"""The one interface every probe implements: `collect()` returns its report section."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from agent.model import ClockOffset
from agent.settings import Duration, Section, option

__all__ = ["CollectorLink", "Probe", "ProbeOptions"]


class ProbeOptions(Section):
    """Keys every probe accepts under `probes.<name>:`; a probe with more subclasses this."""

    enabled: bool = True
    # None: the report interval the collector gave at enrollment (15 s by default).
    interval: Duration | None = option(default=None, gt=0)


@dataclass(frozen=True)
class CollectorLink:
    """What a probe may use of the collector connection (the transport stays in agent.transport).

    `throughput(nbytes)` streams `nbytes` from the collector and returns (bytes received,
    seconds taken); `upload(nbytes)` the other way; both raise an AgentError when the call
    fails. `clock_offset()` is the
    collector-minus-agent clock offset measured on the last delivery.
    """

    address: str
    throughput: Callable[[int], tuple[int, float]]
    clock_offset: Callable[[], ClockOffset] = ClockOffset
    # `upload(nbytes)` streams `nbytes` to the collector: (bytes it received, seconds taken).
    upload: Callable[[int], tuple[int, float]] | None = None


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

    def connect(self, collector: CollectorLink) -> None:
        """Called once the agent has a collector connection; most probes do not need it."""
        del collector

    @abstractmethod
    def collect(self) -> object:
        """Observe now and return this probe's section of the report."""
