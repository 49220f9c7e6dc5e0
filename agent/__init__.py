"""Canh Gác agent: probes this machine and delivers reports to the collector."""

__version__ = "0.1.0"
