"""Every metric the collector exposes is declared in this package; /metrics reads the store."""

from collector.metrics.base import AGENT_LABELS, Spec
from collector.metrics.core import SPECS, Exposition, ServerMetrics

__all__ = ["AGENT_LABELS", "SPECS", "Exposition", "ServerMetrics", "Spec"]
