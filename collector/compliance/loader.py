"""Loading rule packs (rules/*.yaml): every error names file, line and rule id."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import cel
import yaml
from pydantic import Field, ValidationError

from canhgac_common.config import Duration, StrictModel
from collector.compliance.evaluate import keyer, pruner, read_tree
from collector.compliance.model import SEVERITIES, Rule, RulePack, Scope, Text
from collector.compliance.schema import (
    AGENT_VARIABLES,
    FLEET_VARIABLES,
    MAP_KEY,
    SECTIONS,
    Schema,
    sample,
)
from collector.errors import RuleError
from collector.model import Role

__all__ = ["PACK_VERSION", "check_condition", "load_pack"]

PACK_VERSION = 1

Severity = Literal["critical", "high", "medium", "low", "info"]
assert set(SEVERITIES) == set(Severity.__args__)  # type: ignore[attr-defined]


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    m = _Mapping()
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    for key_node, value_node in node.value:
        key = str(loader.construct_object(key_node, deep=True))
        if key in m:
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
            )
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[key] = key_node.start_mark.line + 1
    return m


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _TextSpec(StrictModel):
    vi: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _ScopeSpec(StrictModel):
    roles: list[Role] = []
    districts: list[str] = []
    communes: list[str] = []
    units: list[str] = []


class _RuleSpec(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: Literal["agent", "fleet"] = "agent"
    title: _TextSpec
    remediation: _TextSpec
    rationale: _TextSpec
    severity: Severity
    scope: _ScopeSpec = _ScopeSpec()
    condition: str = Field(min_length=1)
    # An agent rule judges only machines where this holds (no verdict elsewhere), so a verdict
    # count means "of the machines it applies to".
    applies: str | None = Field(default=None, min_length=1)
    for_: Duration = Field(default=0.0, alias="for", ge=0)
    hold: Duration | None = Field(default=None, ge=0)
    group_by: Literal["commune", "district"] | None = None
    suppresses: bool = False


_SYNTAX = re.compile(r"<input>:(\d+):(\d+): Syntax error: ([^\n]*)")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_CHAIN = re.compile(r"(?<![\w.\]\)])([A-Za-z_]\w*)((?:\s*\.\s*[A-Za-z_]\w*)+)(\s*\()?")
_BINDING = re.compile(
    r"([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\.\s*(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,"
)
_TIME_DEPENDENT = re.compile(r"\bagent\s*\.\s*silent_")
# A string literal (skipped), or a use of a verdict count with its quoted agent rule id.
_COUNT = re.compile(
    rf"{_STRING.pattern}|(?<![\w.])(passing|judged)\b(?:\s*\[\s*({_STRING.pattern})\s*\])?"
)


def _resolve(schema: Any, segments: list[str]) -> tuple[Any, str | None]:
    """Walk `segments` down `schema`; the sub-schema, or the first segment that is unknown."""
    for i, seg in enumerate(segments):
        if isinstance(schema, dict) and MAP_KEY in schema:
            schema = schema[MAP_KEY]
        elif isinstance(schema, dict) and seg in schema:
            schema = schema[seg]
        else:
            return None, ".".join(segments[: i + 1])
    return schema, None


def _element(schema: Any) -> Any:
    if isinstance(schema, list):
        return schema[0]
    if isinstance(schema, dict) and MAP_KEY in schema:
        return ""  # comprehensions over a map bind its keys
    return None


def _check_paths(condition: str, variables: Schema) -> list[str]:
    """Unknown fields in dotted paths (`hardware.memory.totl_bytes`), including fields of
    comprehension variables bound over a known list (`hardware.disks.all(d, d.fre > 0)`)."""
    text = _STRING.sub('""', condition)
    scope: dict[str, Any] = dict(variables)
    for m in _BINDING.finditer(text):
        parts = [p.strip() for p in m.group(1).split(".")]
        if parts[0] in scope:
            found, _ = _resolve(scope[parts[0]], parts[1:])
            element = _element(found)
            if element is not None:
                scope[m.group(2)] = element
    problems = []
    for m in _CHAIN.finditer(text):
        root = m.group(1)
        if root not in scope:
            continue
        segments = [s.strip() for s in m.group(2).split(".")[1:]]
        if m.group(3):  # the last segment is a method: size(), matches(), all(...)
            segments = segments[:-1]
        _, unknown = _resolve(scope[root], segments)
        if unknown is not None:
            problems.append(f"unknown snapshot field {root}.{unknown}")
    return problems


_MACRO = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*$")


def _read_paths(condition: str, variables: Schema) -> frozenset[tuple[str, ...]]:
    """The variable paths a condition reads ("*" = every element or map value): the evaluator
    converts only those to CEL (a string costs ~5 us to convert) and memoizes verdicts on them."""
    text = _STRING.sub('""', condition)
    bound: dict[str, tuple[str, ...]] = {}
    for m in _BINDING.finditer(text):
        parts = tuple(p.strip() for p in m.group(1).split("."))
        base = bound.get(parts[0], (parts[0],)) + parts[1:]
        bound[m.group(2)] = (*base, "*")
    paths: set[tuple[str, ...]] = set()
    chained = {m.start(2) for m in _BINDING.finditer(text)}  # `d` in all(d, ...) reads nothing
    for m in _CHAIN.finditer(text):
        root = m.group(1)
        if root not in variables and root not in bound:
            continue
        chained.add(m.start(1))
        segments = tuple(s.strip() for s in m.group(2).split(".")[1:])
        if m.group(3):
            if _MACRO.search(text[: m.end(2)]):
                continue  # the bound variable's own uses say which fields are read
            segments = segments[:-1]
        paths.add(bound.get(root, (root,)) + segments)
    for m in re.finditer(r"(?<![\w.])([A-Za-z_]\w*)\b", text):
        name = m.group(1)
        if m.start(1) not in chained and (name in variables or name in bound):
            paths.add(bound.get(name, (name,)))
    return frozenset(paths)


def _counted(condition: str, agent_rules: Collection[str]) -> tuple[frozenset[str], list[str]]:
    """The agent rules whose verdicts a fleet condition counts (`passing["antivirus.present"]`):
    only those are counted on each tick, so the id must be a quoted one of the pack."""
    ids: set[str] = set()
    problems = []
    for m in _COUNT.finditer(condition):
        name, quoted = m.group(1), m.group(2)
        if name is None:
            continue  # a string literal
        if quoted is None:
            problems.append(f'{name} takes a quoted agent rule id: {name}["antivirus.present"]')
        elif (rule_id := quoted[1:-1]) not in agent_rules:
            problems.append(f"unknown agent rule {rule_id!r} in {name}[...]")
        else:
            ids.add(rule_id)
    return frozenset(ids), problems


def check_condition(  # noqa: PLR0911 (one return per kind of problem)
    condition: str, kind: str, agent_rules: Collection[str] = ()
) -> tuple[cel.Program | None, frozenset[tuple[str, ...]], list[str]]:
    """Compile `condition` and check it against the variables of `kind` (a fleet rule may
    count the verdicts of `agent_rules`); (program, the variable paths it reads, problems)."""
    try:
        program = cel.compile(condition)
    except ValueError as e:
        m = _SYNTAX.search(str(e))
        detail = f"column {m.group(2)}: {m.group(3)}" if m else str(e).splitlines()[0]
        return None, frozenset(), [f"CEL syntax error at {detail}"]
    variables = AGENT_VARIABLES if kind == "agent" else FLEET_VARIABLES
    bound = {m.group(2) for m in _BINDING.finditer(_STRING.sub('""', condition))}
    unknown = sorted(set(program.variables()) - set(variables) - bound)
    if unknown:
        known = ", ".join(sorted(variables))
        return None, frozenset(), [f"unknown variable {v!r} (known: {known})" for v in unknown]
    problems = _check_paths(condition, variables)
    if kind == "fleet":
        problems += _counted(condition, agent_rules)[1]
    if problems:
        return None, frozenset(), problems
    reads = _read_paths(condition, variables)
    inputs = pruner(read_tree(reads))
    for fill in (False, True):
        values = sample(variables, fill, agent_rules)
        try:
            result = program.execute(values)
        except KeyError as e:
            return None, reads, [f"unknown snapshot field {e.args[0]!r}"]
        except TypeError as e:
            return None, reads, [f"CEL type error: {str(e).split('.')[0]}"]
        except RuntimeError as e:
            return None, reads, [f"CEL error: {str(e).split('. ')[0]}"]
        except (ZeroDivisionError, ValueError, OverflowError):
            continue  # depends on the data, not on the rule
        if not isinstance(result, bool):
            return None, reads, [f"condition must be true or false, not {type(result).__name__}"]
        try:
            same = program.execute(inputs(values)) == result
        except Exception:  # whatever it is, the pruned input is not enough
            same = False
        if not same:  # the evaluator gives a rule only the paths found in its condition
            return None, reads, ["the condition reads a field not named by a dotted path"]
    return program, reads, []


def _line(m: Any, key: str) -> int:
    if isinstance(m, _Mapping):
        return m.key_lines.get(key, m.line)
    return 0


def _spec_problems(e: ValidationError, raw: _Mapping) -> list[tuple[int, str]]:
    out = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"]]
        key = loc[0] if loc else ""
        line = _line(raw, key)
        where = ".".join(loc)
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            out.append((line, f"unknown field {key!r}"))
        elif err["type"] == "missing":
            out.append((raw.line, f"missing field {where!r}"))
        else:
            out.append((line, f"{where}: {err['msg']}"))
    return out


def _rule(  # noqa: PLR0911 (one return per kind of problem)
    raw: Any, file: str, default_hold: float, index: int, agent_rules: Collection[str]
) -> tuple[Rule | None, list[str]]:
    line = raw.line if isinstance(raw, _Mapping) else 0
    rule_id = str(raw.get("id", f"#{index + 1}")) if isinstance(raw, dict) else f"#{index + 1}"

    def at(n: int, msg: str) -> str:
        return f"{file}:{n}: rule {rule_id}: {msg}"

    if not isinstance(raw, _Mapping):
        return None, [at(line, "a rule must be a mapping")]
    try:
        spec = _RuleSpec.model_validate(raw)
    except ValidationError as e:
        return None, [at(n, msg) for n, msg in _spec_problems(e, raw)]
    if spec.kind == "fleet" and spec.group_by is None:
        return None, [at(line, "a fleet rule needs group_by: commune or district")]
    if spec.kind == "agent" and (spec.group_by is not None or spec.suppresses):
        key = "group_by" if spec.group_by is not None else "suppresses"
        return None, [at(_line(raw, key), f"{key} is for fleet rules only")]
    if spec.kind == "fleet" and spec.applies is not None:
        return None, [at(_line(raw, "applies"), "applies is for agent rules only")]
    program, reads, problems = check_condition(spec.condition, spec.kind, agent_rules)
    if program is None:
        return None, [at(_line(raw, "condition"), p) for p in problems]
    applies = None
    if spec.applies is not None:
        applies, applies_reads, problems = check_condition(spec.applies, spec.kind)
        if applies is None:
            return None, [at(_line(raw, "applies"), p) for p in problems]
        reads |= applies_reads
    text = f"{spec.applies or ''} {spec.condition}"
    variables = set(program.variables()) | set(applies.variables() if applies else ())
    return Rule(
        id=spec.id,
        kind=spec.kind,
        title=Text(spec.title.vi, spec.title.en),
        remediation=Text(spec.remediation.vi, spec.remediation.en),
        rationale=Text(spec.rationale.vi, spec.rationale.en),
        severity=spec.severity,
        scope=Scope(
            tuple(spec.scope.roles),
            tuple(spec.scope.districts),
            tuple(spec.scope.communes),
            tuple(spec.scope.units),
        ),
        condition=spec.condition,
        for_seconds=spec.for_,
        hold_seconds=default_hold if spec.hold is None else spec.hold,
        group_by=spec.group_by or "",
        suppresses=spec.suppresses,
        source=f"{file}:{line}",
        program=program,
        applies=applies,
        inputs=pruner(read_tree(reads)),
        key=keyer(read_tree(reads)),
        sections=frozenset(variables & set(SECTIONS)),
        time_dependent=spec.kind == "agent" and bool(_TIME_DEPENDENT.search(text)),
        reads=reads,
        counts=_counted(spec.condition, agent_rules)[0] if spec.kind == "fleet" else frozenset(),
    ), []


def _read_file(path: Path) -> tuple[list[Any], list[str]]:
    """The raw rules of one pack file, and its pack-level problems."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        return [], [f"{file}:0: cannot read rule pack: {e.strerror}"]
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        return [], [f"{file}:{mark.line + 1 if mark else 0}: invalid YAML: {e.problem}"]
    if not isinstance(doc, _Mapping):
        return [], [f"{file}:1: a rule pack is a mapping with version: and rules:"]
    problems = [
        f"{file}:{doc.key_lines[k]}: unknown field {k!r}"
        for k in doc
        if k not in ("version", "rules")
    ]
    if doc.get("version") != PACK_VERSION:
        problems.append(
            f"{file}:{_line(doc, 'version')}: version must be {PACK_VERSION}, "
            f"not {doc.get('version')!r}"
        )
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list):
        problems.append(f"{file}:{_line(doc, 'rules')}: rules must be a list")
        return [], problems
    return raw_rules, problems


def load_pack(path: Path, default_hold: float = 300.0) -> RulePack:
    """The rules of `path` (a YAML file, or a directory of *.yaml); raises RuleError."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise RuleError([f"{path}:0: no *.yaml rule pack in this directory"])
    read = [(str(f), *_read_file(f)) for f in files]
    # Fleet rules may count the verdicts of agent rules in any file of the pack.
    agent_rules = {
        str(raw["id"])
        for _, raws, _ in read
        for raw in raws
        if isinstance(raw, dict) and "id" in raw and raw.get("kind", "agent") == "agent"
    }
    rules: list[Rule] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for file, raws, errs in read:
        problems += errs
        for i, raw in enumerate(raws):
            r, rule_errs = _rule(raw, file, default_hold, i, agent_rules)
            problems += rule_errs
            if r is None:
                continue
            if r.id in seen:
                problems.append(f"{r.source}: rule {r.id}: duplicate id (first at {seen[r.id]})")
            else:
                seen[r.id] = r.source
                rules.append(r)
    if problems:
        raise RuleError(problems)
    return RulePack(tuple(rules), tuple(str(f) for f in files))
