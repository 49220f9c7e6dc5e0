"""The month's report mailed to each district's leadership: `canhgac-collector report` for the
month before, its PDF summary attached, and the sealed export written when
`reports.exports_dir` is set (docs/reports.md). Built on the leader by the notifier's digest
schedule (`notify.digest.monthly_day`, `monthly_at`)."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.alerts.notify.notifier import Mail
from collector.config import CollectorConfig, export_key_path
from collector.report import (
    Report,
    Scope,
    build_report,
    export_report,
    parse_period,
    rule_titles,
    summary_pdf,
)
from collector.sites import Sites
from collector.store import Store
from collector.store.mail import Attachment

__all__ = ["MonthlyReport"]

log = logging.getLogger(__name__)


class MonthlyReport:
    """Callable as the notifier's `monthly`: (district, "YYYY-MM", language, now) -> Mail."""

    def __init__(self, store: Store, cfg: CollectorConfig, sites: Sites | None) -> None:
        self._store = store
        self._cfg = cfg
        self._sites = sites

    def report(self, district: str, month: str, now: float) -> Report:
        cfg = self._cfg
        period = parse_period(month, None, None, ZoneInfo(cfg.timezone))
        return build_report(
            self._store,
            self._sites,
            period,
            Scope(district),
            now=now,
            stale_after=cfg.report_interval * cfg.stale_after_intervals,
            connected_share=cfg.reports.connected_share,
        )

    def __call__(self, district: str, month: str, lang: str, now: float) -> Mail:
        report = self.report(district, month, now)
        lines = report.lines(lang)
        vi = lang == "vi"
        where = ""
        exports = self._cfg.reports.exports_dir
        if exports is not None:
            where = self._export(report, lang, exports)
        name = report.period.describe(lang).split(" (")[0]
        subject = (
            f"[Canh Gác] Báo cáo {name} {district}"
            if vi
            else f"[Canh Gác] Report {name} {district}"
        )
        if where:
            lines += ["", ("Bản xuất kiểm toán: " if vi else "Audit export: ") + where]
        text = "\n".join(lines) + "\n"
        body = '<pre style="font-family:sans-serif">' + html.escape(text) + "</pre>"
        head = f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head>'
        page = f"{head}<body>{body}</body></html>"
        pdf = summary_pdf(report, self._store, lang, self._cfg.reports.font)
        file = f"canhgac-{month}-{district}.pdf".replace(" ", "_")
        return Mail(subject, text, page, (Attachment(file, "application/pdf", pdf),))

    def _export(self, report: Report, lang: str, out: Path) -> str:
        from collector.export.manifest import load_or_create_key  # noqa: PLC0415

        try:
            folder = export_report(
                report,
                self._store,
                rule_titles(self._cfg.rules.path),
                lang,
                out,
                key=load_or_create_key(export_key_path(self._cfg)),
                formats=("xlsx", "csv", "pdf", "json"),
                font=self._cfg.reports.font,
            )
        except (ValueError, OSError) as e:
            log.error("monthly export of %s failed: %s", report.place(), e)
            return ""
        log.info("monthly export of %s written to %s", report.place(), folder)
        return str(folder)
