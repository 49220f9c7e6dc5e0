"""Compliance audit exports: tables (`table`) written as XLSX, CSV, JSON and a PDF summary
(`formats`) into a folder sealed by a signed, chained manifest (`manifest`, `write`).

Nothing here is imported by the serving collector: only `canhgac-collector export` loads the
file-format and signature libraries. The tables come from collector.report; nothing here
touches the store.
"""
