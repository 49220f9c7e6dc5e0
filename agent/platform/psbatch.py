"""Pure halves of the one-PowerShell-run-per-cycle batch: the combined script, and its output
split back into one outcome per query (docs/probes.md, "The cost on Windows")."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CADENCE_SLACK",
    "COMMAND_LINE_LIMIT",
    "LINE_MARKER",
    "MAX_DOCUMENT_CHARS",
    "STARTUP_ALLOWANCE",
    "Outcome",
    "Query",
    "build_script",
    "outer_timeout",
    "split_output",
]

# Every result line starts with this, so that anything else PowerShell writes to standard
# output (a warning, a module's Write-Host) is never taken for a result.
LINE_MARKER = "##canhgac "
# CreateProcess takes at most 32,767 characters of command line; keep room for the flags.
COMMAND_LINE_LIMIT = 30_000
# One query's document above this is its error entry (a software list is ≈ 10–40 KB; 5.1's
# JSON serializer stops at 2,097,152 characters by default).
MAX_DOCUMENT_CHARS = 1_000_000
# Starting powershell.exe and opening the runspaces, on top of the longest query's budget:
# WMF 5.1's notes give 0.25 s warm and 13 s for the first run ever on a machine.
STARTUP_ALLOWANCE = 30.0
# A probe's own slow read (link's gateway, hardware's thermal zones: every 5 minutes inside a
# 15 s probe) due within this much counts as due now: it then lands in the cycle, and the
# PowerShell run, of the 5-minute probes instead of the 15 s cycle after it.
CADENCE_SLACK = 5.0


@dataclass(frozen=True)
class Query:
    """One probe's PowerShell: `script` writes one JSON document (a string) to the pipeline,
    within `timeout` seconds; `name` keys it in the batch (one name, one script per cycle)."""

    name: str
    script: str
    timeout: float
    max_chars: int = MAX_DOCUMENT_CHARS


@dataclass(frozen=True)
class Outcome:
    """What one query gave: its document, or why there is none (`error`, never both)."""

    document: str | None
    error: str = ""
    elapsed_ms: int | None = None  # since the batch's runspaces started, as PowerShell timed it


def _quoted(text: str) -> str:
    # A single-quoted PowerShell string takes everything literally except the quote itself;
    # PowerShell also reads the typographic quotes as quotes, so scripts stay ASCII.
    if not text.isascii():
        raise ValueError("a batched PowerShell script must be ASCII")
    return "'" + text.replace("'", "''") + "'"


# The batch itself. Each query runs in a runspace of its own (a variable of one never meets
# another's), all at once, in this one process; each is waited for until its own budget from
# the common start, then left to stop (BeginStop) while the others are reported. Each result is
# one line as soon as known, so a run killed from outside keeps the lines written before.
# Non-ASCII characters are written as \\uXXXX escapes: Windows PowerShell 5.1 writes redirected
# output in the console code page, and ASCII passes through every code page unchanged.
# A Constrained Language mode (AppLocker/WDAC) refuses runspaces: every query says so.
_BODY = r"""
$ErrorActionPreference = 'Stop';
function W($entry) {
  $line = $entry | ConvertTo-Json -Compress;
  $line = [regex]::Replace($line, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value });
  [Console]::Out.Write('##canhgac ' + $line + "`n"); [Console]::Out.Flush();
};
$mode = [string]$ExecutionContext.SessionState.LanguageMode;
if ($mode -ne 'FullLanguage') {
  $why = "PowerShell runs in $mode mode (AppLocker or WDAC policy); the queries need FullLanguage";
  foreach ($q in $queries) {
    Write-Output ('##canhgac ' + (@{ query = $q.Name; error = $why } | ConvertTo-Json -Compress));
  };
  exit 0;
};
$iss = [initialsessionstate]::CreateDefault2();
$pool = [runspacefactory]::CreateRunspacePool(1, $queries.Count, $iss, $Host);
$pool.Open();
$clock = [Diagnostics.Stopwatch]::StartNew();
$running = @(foreach ($q in $queries) {
  $ps = [powershell]::Create(); $ps.RunspacePool = $pool;
  [void]$ps.AddScript($q.Script);
  @{ Q = $q; PS = $ps; Handle = $ps.BeginInvoke() };
});
foreach ($r in $running) {
  $q = $r.Q; $entry = [ordered]@{ query = $q.Name };
  try {
    $left = [Math]::Max(0, $q.Budget - $clock.ElapsedMilliseconds);
    if ($r.Handle.AsyncWaitHandle.WaitOne([int]$left)) {
      $text = [string]::Join("`n", @($r.PS.EndInvoke($r.Handle) | ForEach-Object { [string]$_ }));
      if ($text.Length -gt $q.Max) {
        $entry.error = "output of $($text.Length) characters exceeds the bound of $($q.Max)";
      } else { $entry.document = $text };
    } else {
      $entry.error = "did not finish within its budget of $($q.Budget / 1000) s";
      [void]$r.PS.BeginStop($null, $null);
    };
  } catch {
    $e = $_.Exception; while ($e.InnerException) { $e = $e.InnerException };
    $entry.error = $e.Message;
  };
  $entry.ms = $clock.ElapsedMilliseconds;
  W $entry;
};
[Console]::Out.Flush();
[Environment]::Exit(0)
"""


def build_script(queries: Sequence[Query]) -> str:
    """The one `-Command` script that runs every query; ValueError when it cannot be built
    (no query, a name twice, a non-ASCII script, or more than the command line takes)."""
    if not queries:
        raise ValueError("a PowerShell batch needs at least one query")
    names = [q.name for q in queries]
    if len(set(names)) != len(names):
        raise ValueError(f"a query name appears twice in one batch: {names}")
    table = ", ".join(
        f"  @{{ Name = {_quoted(q.name)}; Budget = {max(1, round(q.timeout * 1000))};"
        f" Max = {q.max_chars}; Script = {_quoted(q.script)} }}"
        for q in queries
    )
    # One line: how the agent has always passed -Command (no newline through CreateProcess).
    body = " ".join(line.strip() for line in _BODY.splitlines() if line.strip())
    script = f"$queries = @({table}); {body}"
    if len(script) > COMMAND_LINE_LIMIT:
        raise ValueError(
            f"the batched PowerShell script is {len(script)} characters, more than the "
            f"{COMMAND_LINE_LIMIT} a Windows command line takes"
        )
    return script


def outer_timeout(queries: Sequence[Query]) -> float:
    """How long the process may run: the longest budget (they run at once) and the start."""
    return max(q.timeout for q in queries) + STARTUP_ALLOWANCE


def split_output(stdout: str, queries: Sequence[Query], failure: str = "") -> dict[str, Outcome]:
    """One outcome per query from the batch's standard output (decoded as ASCII with
    replacement). A query without a result line gets `failure` (why the run ended: timeout,
    exit code, bound) or, when the run itself went well, that it printed none."""
    wanted = {q.name for q in queries}
    found: dict[str, Outcome] = {}
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line.startswith(LINE_MARKER.strip()):
            continue
        entry = _entry(line[len(LINE_MARKER.strip()) :])
        if entry is None:
            continue
        name, outcome = entry
        if name in wanted and name not in found:
            found[name] = outcome
    missing = failure or "PowerShell wrote no result for it (its output was cut or garbled)"
    return {q.name: found.get(q.name, Outcome(None, missing)) for q in queries}


def _entry(text: str) -> tuple[str, Outcome] | None:
    try:
        parsed: object = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None  # cut in the middle: the query it was for is reported missing
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("query"), str):
        return None
    name = parsed["query"]
    elapsed = parsed.get("ms")
    ms = elapsed if isinstance(elapsed, int) and not isinstance(elapsed, bool) else None
    if "\ufffd" in text:
        # The script escapes every non-ASCII character; a raw one means the bytes were changed.
        return name, Outcome(None, "PowerShell's result line is not ASCII (garbled output)", ms)
    error = parsed.get("error")
    if isinstance(error, str) and error.strip():
        return name, Outcome(None, " ".join(error.split()), ms)
    document = parsed.get("document")
    if not isinstance(document, str):
        return name, Outcome(None, "PowerShell's result has neither a document nor an error", ms)
    return name, Outcome(document, "", ms)
