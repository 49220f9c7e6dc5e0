"""Generated artefacts (dashboards, metrics reference) are committed up to date."""

from __future__ import annotations

import re

from collector.metrics import SPECS
from scripts import dashboards, metrics_doc


def test_dashboards_are_up_to_date() -> None:
    assert dashboards.main(["--check"]) == 0, "run `make dashboards`"


def test_metrics_reference_is_up_to_date() -> None:
    assert metrics_doc.main(["--check"]) == 0, "run `make docs`"


def test_every_dashboard_metric_is_declared() -> None:
    declared = {s.name.removesuffix("_total") for s in SPECS}
    recorded = ("canhgac:",)
    for d in dashboards.DASHBOARDS:
        for p in d.panels:
            for expr, _ in p.exprs:
                for token in re.findall(r"canhgac[a-z0-9_:]*", expr):
                    if not token.startswith(recorded):
                        name = token.removesuffix("_bucket").removesuffix("_total")
                        assert name in declared, f"{d.uid}: {token} is not a declared metric"
