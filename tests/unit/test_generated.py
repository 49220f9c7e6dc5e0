"""Generated artefacts (dashboards, metrics reference) are committed up to date, and the
architecture map cites only code and files that exist."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

from collector.metrics import SPECS
from scripts import agent_schema, dashboards, metrics_doc

REPO = Path(__file__).resolve().parents[2]


def test_dashboards_are_up_to_date() -> None:
    assert dashboards.main(["--check"]) == 0, "run `make dashboards`"


def test_metrics_reference_is_up_to_date() -> None:
    assert metrics_doc.main(["--check"]) == 0, "run `make docs`"


def test_agent_settings_schema_is_up_to_date() -> None:
    assert agent_schema.main(["--check"]) == 0, "run `make docs`"


def test_message_catalogs_are_up_to_date() -> None:
    """canhgac.pot holds every message of the CLIs, each .po translates all of it, and each
    .mo is compiled from its .po (GNU gettext, installed by scripts/install-test-deps.sh)."""
    out = subprocess.run(
        [str(REPO / "scripts" / "i18n.sh"), "--check"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"run `make i18n` and translate what is new:\n{out.stderr}"


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


# Files the agent writes at run time: named in the docs, never in the repository.
RUNTIME_FILES = {"credential.json", "spool.db", "spool.id", "machine-id", "settings.json"}


def _cited(doc: str) -> tuple[list[str], list[str]]:
    """Backticked repository paths and dotted code names (`agent.x.Y`) a document cites."""
    text = (REPO / doc).read_text(encoding="utf-8")
    paths, names = [], []
    for token in sorted(set(re.findall(r"`([^`\n]+)`", text))):
        if re.fullmatch(
            r"[\w.*-]+(/[\w.*-]*)+|[\w-]+\.(py|md|yaml|yml|sh|toml|json|sql|service)", token
        ):
            if not token.startswith(("/", "../")) and token not in RUNTIME_FILES:
                paths.append(token)
        elif re.fullmatch(r"(agent|collector|canhgac_common|bench|scripts)(\.\w+)+", token):
            names.append(token)
    return paths, names


def _resolves(name: str) -> bool:
    """A dotted name whose longest importable prefix is a module of ours names attributes of
    it; one whose only importable part is the package (`collector.tls.cert_file`) is a config
    key path, not code, and is not checked."""
    parts = name.split(".")
    for i in range(len(parts), 1, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return True


def test_architecture_doc_cites_only_what_exists() -> None:
    paths, names = _cited("docs/architecture.md")
    # A path with a directory is from the repository's root; a bare name (`engine.py`,
    # `templates/`, cited beside its directory) must exist somewhere in the tree.
    missing = [p for p in paths if "/" in p.rstrip("/") and not list(REPO.glob(p.rstrip("/")))]
    missing += [p for p in paths if "/" not in p.rstrip("/") and not any(REPO.rglob(p.rstrip("/")))]
    missing += [n for n in names if not _resolves(n)]
    assert missing == []
    assert len(paths) > 20 and len(names) > 5  # the scanner does find what the map cites


def test_no_merge_conflict_is_left_in_the_tree() -> None:
    """A hand merge once left `<<<<<<< HEAD` … `>>>>>>> procs` in docs/performance.md."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    marker = re.compile(rb"^(<{7} |={7}$|>{7} )", re.MULTILINE)
    left = [
        name.decode()
        for name in tracked
        if name
        and (REPO / name.decode()).is_file()
        and marker.search((REPO / name.decode()).read_bytes())
    ]
    assert left == [], f"merge conflict markers in {left}"
