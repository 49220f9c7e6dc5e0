"""Repo guards: package boundaries, who may touch generated code, and model == wire names."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import agent.model
from agent.config import ProbesConfig
from agent.probes import PROBES
from canhgac_proto.v1 import collector_pb2 as pb
from collector.decode import SECTIONS

REPO = Path(__file__).resolve().parents[2]

# Who may import the generated protobuf code (DESIGN.md §3), as paths relative to the repo.
PROTO_IMPORTERS = ("agent/transport/*.py", "collector/server.py", "collector/decode.py")


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imported_roots(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level module name) of every absolute import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _importers(packages: tuple[str, ...], root: str) -> list[str]:
    return [
        f"{path.relative_to(REPO)}:{line}"
        for package in packages
        for path in _sources(package)
        for line, name in _imported_roots(path)
        if name == root
    ]


def test_proto_dir_is_not_a_package() -> None:
    # The import name `proto` belongs to proto-plus; generated code lives in canhgac_proto.
    assert (REPO / "proto").is_dir()
    assert not (REPO / "proto" / "__init__.py").exists()


def test_packages_have_sources() -> None:
    # Guards against the scans below passing vacuously on an empty tree.
    for package in ("agent", "collector", "canhgac_common"):
        assert len(_sources(package)) >= 3, package


def test_scanner_sees_imports_inside_functions(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import os\nfrom . import x\ndef f():\n    import collector.store as s\n"
        "    from agent.model import Report\n",
        encoding="utf-8",
    )
    assert list(_imported_roots(src)) == [(1, "os"), (4, "collector"), (5, "agent")]


def test_agent_never_imports_collector() -> None:
    assert _importers(("agent",), "collector") == []


def test_collector_never_imports_agent() -> None:
    assert _importers(("collector",), "agent") == []


def test_common_imports_neither_side() -> None:
    assert _importers(("canhgac_common",), "agent") == []
    assert _importers(("canhgac_common",), "collector") == []


def test_only_the_edges_import_generated_code() -> None:
    found = _importers(("agent", "collector", "canhgac_common"), "canhgac_proto")
    files = {entry.rsplit(":", 1)[0] for entry in found}
    outside = sorted(f for f in files if not any(Path(f).match(p) for p in PROTO_IMPORTERS))
    assert outside == [], f"only {PROTO_IMPORTERS} may import canhgac_proto"
    # And the scan does see the edges that legitimately do.
    assert {"agent/transport/encode.py", "collector/decode.py"} <= files


def test_proto_path_is_import_path() -> None:
    assert pb.DESCRIPTOR.package == "canhgac_proto.v1"
    assert pb.DESCRIPTOR.name == "canhgac_proto/v1/collector.proto"
    assert (REPO / "proto" / pb.DESCRIPTOR.name).is_file()


MODEL_CLASSES = [getattr(agent.model, name) for name in agent.model.__all__]


def test_model_lists_the_wire_records() -> None:
    names = {cls.__name__ for cls in MODEL_CLASSES}
    assert {
        "Hardware",
        "Host",
        "Cpu",
        "Memory",
        "Disk",
        "Temperature",
        "Battery",
        "NetInterface",
        "Report",
        "ProbeError",
        "SpoolStats",
    } <= names


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda c: c.__name__)
def test_model_fields_exist_on_the_wire(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    message = getattr(pb, cls.__name__, None)
    assert message is not None, f"no protobuf message {cls.__name__} for agent.model.{cls.__name__}"
    wire = set(message.DESCRIPTOR.fields_by_name)
    missing = sorted({f.name for f in dataclasses.fields(cls)} - wire)
    assert missing == [], f"agent.model.{cls.__name__} fields not in the proto: {missing}"


def test_report_sections_are_model_fields() -> None:
    # Every probe section on the wire (numbers 10..19) has a field on the agent's Report.
    sections = {f.name for f in pb.Report.DESCRIPTOR.fields if 10 <= f.number < 20}
    assert "hardware" in sections
    assert sections <= {f.name for f in dataclasses.fields(agent.model.Report)}


def test_every_registered_probe_names_a_report_section() -> None:
    """The runner builds Report(**sections): a probe whose name is not a section would crash
    the whole cycle instead of becoming an error entry."""
    fields = {f.name for f in dataclasses.fields(agent.model.Report)}
    for name in PROBES:
        assert name in fields, f"probe {name!r} has no field in agent.model.Report"
        assert name in SECTIONS, f"probe {name!r} has no section field (10-19) in the proto"


def test_every_registered_probe_has_options_in_the_agent_config() -> None:
    assert {f.name for f in dataclasses.fields(ProbesConfig)} == set(PROBES)


def _string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, value) of every string constant in `path`, f-string parts included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


# String-keyed contracts of the collector, each spelled only in collector/model.py.
CONTRACT_SPELLINGS: dict[str, Callable[[str], bool]] = {
    "status: snapshot key": lambda s: s.startswith("status:"),
    "meeting-room role": lambda s: s == "meeting-room",
}


def test_scanner_sees_strings_inside_f_strings(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text('x = f"status:{name}"\ny = "meeting-room"\n', encoding="utf-8")
    assert sorted(_string_literals(src)) == [(1, "status:"), (2, "meeting-room")]


@pytest.mark.parametrize("contract", CONTRACT_SPELLINGS)
def test_collector_contracts_are_spelled_once(contract: str) -> None:
    spelled = CONTRACT_SPELLINGS[contract]
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in _sources("collector")
        for line, value in _string_literals(path)
        if spelled(value)
    ]
    assert found and all(f.startswith("collector/model.py:") for f in found), (
        f"{contract} spelled outside collector/model.py: {found}"
    )


def _imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module name) of every absolute import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_a_probe_module_imports_no_other_probe() -> None:
    """A probe is one unit: what two probes share lives in agent/platform/, not in either."""
    found = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in _sources("agent/probes")
        if path.name != "__init__.py"
        for line, name in _imported_modules(path)
        if name.startswith("agent.probes") and name not in ("agent.probes.base",)
    ]
    assert found == []


def test_platform_never_imports_probes_or_config() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in _sources("agent/platform")
        for line, name in _imported_modules(path)
        if name.split(".")[:2] in (["agent", "probes"], ["agent", "config"])
    ]
    assert found == []


# What the store may import of the collector: its own modules, the value types and errors
# at the bottom. Anything else (decode, meetings, alerts, config) sits above it.
STORE_MAY_IMPORT = ("collector.store", "collector.model", "collector.errors")


def test_the_store_imports_nothing_above_it() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in _sources("collector/store")
        for line, name in _imported_modules(path)
        if name.split(".")[0] in ("collector", "agent")
        and not any(name == m or name.startswith(m + ".") for m in STORE_MAY_IMPORT)
    ]
    assert found == []
