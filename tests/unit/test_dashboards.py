"""The generated dashboards speak Vietnamese first, colour what needs a look, map states to
words, and drill down from district to commune to machine (queries: test_prometheus.py)."""

from __future__ import annotations

import re
from typing import Any

from scripts.dashboards import DASHBOARDS, DRILL, render

UIDS = {d.uid: d for d in DASHBOARDS}


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(d.uid, p) for d in DASHBOARDS for p in render(d)["panels"]]


def test_every_panel_is_described_in_vietnamese_then_english() -> None:
    for d in DASHBOARDS:
        for p in d.panels:
            assert p.vi and re.search("[à-ỹđ]", p.vi), (d.uid, p.title)
    for uid, panel in _panels():
        vi, _, en = panel["description"].partition("\n\n")
        assert vi and en, (uid, panel["title"])


def test_meeting_rooms_read_as_red_amber_green() -> None:
    (room,) = [p for uid, p in _panels() if p["title"] == "Trạng thái từng phòng"]
    options = room["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {v: (o["text"].split(" / ")[0], o["color"]) for v, o in options.items()} == {
        "0": ("Đỏ", "red"),
        "1": ("Vàng", "yellow"),
        "2": ("Xanh", "green"),
    }


def test_drill_down_reaches_a_dashboard_with_the_variables_it_sets() -> None:
    links = 0
    for uid, panel in _panels():
        for link in panel["fieldConfig"]["defaults"].get("links", []):
            target = re.match(r"/d/([\w-]+)/", link["url"])
            assert target is not None and target.group(1) in UIDS, link
            wanted = set(re.findall(r"var-(\w+)=\$\{__field\.labels\.", link["url"]))
            assert wanted <= set(UIDS[target.group(1)].variables), (uid, link)
            links += 1
    assert {name for name in DRILL} == {"commune", "machine"}
    assert links >= 8
    district = [p for uid, p in _panels() if uid == "canhgac-district"]
    assert any("canhgac-commune" in str(p["fieldConfig"]) for p in district)
    commune = [p for uid, p in _panels() if uid == "canhgac-commune"]
    assert any("canhgac-machine" in str(p["fieldConfig"]) for p in commune)


def test_firewall_by_profile_counts_machines_off_for_every_profile() -> None:
    (fw,) = [p for uid, p in _panels() if p["title"] == "Máy tắt tường lửa theo hồ sơ"]
    (expr,) = [t["expr"] for t in fw["targets"]]
    # Off-counts, with 0 (not the machine total) for a profile no machine has off.
    assert "== 0) or 0 * count by (profile)" in expr


def test_shares_are_coloured_by_threshold() -> None:
    shared = [p for _, p in _panels() if p["fieldConfig"]["defaults"].get("unit") == "percentunit"]
    coloured = [p for p in shared if "thresholds" in p["fieldConfig"]["defaults"]]
    assert len(coloured) >= 5
    for p in coloured:
        steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[0]["value"] is None
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values)
