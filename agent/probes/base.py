"""The one interface every probe implements: `collect()` returns its report section."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, Self, cast, get_args, get_origin

from agent.model import ClockOffset
from agent.settings import Duration, Section, option

if TYPE_CHECKING:
    # The default lets code that takes any probe say plain `Probe`; only the checker needs it
    # (typing.TypeVar has no `default` before Python 3.13).
    from typing_extensions import TypeVar
else:
    from typing import TypeVar

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


if TYPE_CHECKING:
    Options_co = TypeVar("Options_co", bound=ProbeOptions, default=ProbeOptions, covariant=True)
else:
    Options_co = TypeVar("Options_co", bound=ProbeOptions, covariant=True)


class Probe(ABC, Generic[Options_co]):
    """A probe observes one aspect of the machine.

    `class LinkProbe(Probe[LinkOptions])`: the type argument is the probe's options, its key
    under `probes:` is `name`, which is also the field of `agent.model.Report` that carries the
    section. The constructor takes the options first (None: their defaults), then the OS
    boundary as keyword arguments. `collect()` raises `agent.errors.ProbeFailed` (or any
    exception) when it cannot observe; the runner turns that into an error entry and carries on
    with the other probes.
    """

    name: ClassVar[str]
    options_type: ClassVar[type[ProbeOptions]] = ProbeOptions
    """The class of `Options_co`, taken from the subclass's base `Probe[...]`."""
    enabled_by_default: ClassVar[bool] = True
    # A probe whose values are rates since its previous collect (CPU use): `once --print`
    # collects it once before the report it prints, so the printed values mean something.
    needs_baseline: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is Probe:
                (cls.options_type,) = get_args(base)

    def __init__(self, options: Options_co | None = None) -> None:
        self._options = cast("Options_co", self.options_type()) if options is None else options

    @property
    def options(self) -> Options_co:
        """What the probe was built with (a push with the same options keeps the probe)."""
        return self._options

    @classmethod
    def default_options(cls) -> ProbeOptions:
        """The options of a config that does not mention this probe."""
        return cls.options_type(enabled=cls.enabled_by_default)

    @classmethod
    def from_options(cls, options: ProbeOptions) -> Self:
        """The probe as configured under `probes.<name>:`."""
        if not isinstance(options, cls.options_type):
            raise TypeError(
                f"the {cls.name} probe needs {cls.options_type.__name__}, "
                f"not {type(options).__name__}"
            )
        return cls(cast("Options_co", options))

    def connect(self, collector: CollectorLink) -> None:
        """Called once the agent has a collector connection; most probes do not need it."""
        del collector

    def prepare(self) -> None:
        """Called for every probe due in a cycle before any of them collects. A probe whose
        OS reads are shared with others' declares them here (Windows: its PowerShell query, so
        that one process serves the whole cycle, docs/probes.md); most probes do not need it."""

    @abstractmethod
    def collect(self) -> object:
        """Observe now and return this probe's section of the report."""
