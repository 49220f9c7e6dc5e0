"""Canh Gác collector: receives agent reports, keeps history, serves metrics."""

__version__ = "0.1.0"
