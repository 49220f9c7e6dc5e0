"""CPU per report of the default rule pack (budget 500 us) over realistic report sequences:
python -m bench.rules."""

from __future__ import annotations

import copy
import random
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cel

from collector.compliance.evaluate import Memo, pruner, read_tree, report_variables
from collector.compliance.loader import load_pack
from collector.compliance.model import Rule
from collector.model import AgentRecord, Placement, Report

GiB = 1024**3
PACK = Path(__file__).resolve().parent.parent / "rules" / "default.yaml"
AGENT = AgentRecord(
    "a1", "m1", "ubnd-anlac-01", "Windows 10 Pro", "10.0.19045", "0.1.0",
    Placement("Cao Bằng", "Hạ Lang", "An Lạc", "", "workstation"), 0.0, None, 0.0, 0.0, 1,
)  # fmt: skip
HARDWARE = {
    "host": {"hostname": "ubnd-anlac-01", "os_name": "Windows 10 Pro", "os_version": "10.0.19045",
             "os_build": "19045", "arch": "AMD64", "vendor": "Dell Inc.", "model": "OptiPlex 3050",
             "serial": "ABC123", "boot_time": 1.7e9, "uptime_seconds": 3600.0},
    "cpu": {"model": "Intel(R) Core(TM) i3-7100", "physical_cores": 2, "logical_cores": 4,
            "usage_ratio": 0.2, "load1": 0.0, "load5": 0.0, "load15": 0.0, "frequency_mhz": 3900.0},
    "memory": {"total_bytes": 8 * GiB, "available_bytes": 4 * GiB, "used_bytes": 4 * GiB,
               "swap_total_bytes": 2 * GiB, "swap_used_bytes": 0},
    "disks": [{"mountpoint": m, "device": m, "fstype": "NTFS", "total_bytes": 500 * GiB,
               "used_bytes": 300 * GiB, "free_bytes": 200 * GiB} for m in ("C:\\", "D:\\")],
    "temperatures": [],
    "interfaces": [{"name": n, "up": True, "speed_mbps": 1000, "duplex": "full", "mtu": 1500,
                    "mac": "00:11:22:33:44:55", "addresses": ["10.0.0.5"], "bytes_sent": 10**9,
                    "bytes_recv": 10**9, "errors_in": 0, "errors_out": 0, "drops_in": 0,
                    "drops_out": 0} for n in ("Ethernet", "Wi-Fi")],
}  # fmt: skip
NOW = time.time()
ANTIVIRUS = {
    "products": [
        {
            "name": n,
            "source": "security_center",
            "state": s,
            "product_state": ps,
            "owner": o,
            "signatures": "up_to_date",
        }
        for n, s, ps, o in (
            ("Windows Defender", "off", 393472, "microsoft"),
            ("BKAV Pro", "on", 266240, "third_party"),
        )
    ],
    "defender": {
        "status": "ok",
        "reason": "",
        "am_service_enabled": True,
        "antivirus_enabled": False,
        "realtime_protection_enabled": False,
        "tamper_protected": True,
        "running_mode": "Passive Mode",
        "signature_version": "1.421.0.0",
        "signature_updated_at": NOW - 86400.0,
        "signature_age_days": 1,
        "quick_scan_age_days": 2,
        "full_scan_age_days": -1,
    },
    "realtime": "on",
    "signature_updated_at": 0.0,
    "notes": [],
}
SECURITY = {
    "firewall": [
        {"name": n, "state": "on", "default_inbound": "block"}
        for n in ("Domain", "Private", "Public")
    ],
    "os_updated_at": NOW - 5 * 86400.0,
    "os_update_source": "windows_update_history",
    "pending_security_updates": -1,
    "listeners_total": 24,
    "risky_listeners": [
        {"address": "0.0.0.0", "port": p, "service": s, "process": "System"}
        for p, s in ((445, "smb"), (3389, "rdp"))
    ],
    "notes": [],
}
LINK = {
    "gateway": "10.1.0.1",
    "pings": [
        {
            "target": t,
            "address": a,
            "method": "windows-icmp",
            "sent": 10,
            "received": 10,
            "loss_ratio": 0.0,
            "rtt_min_seconds": 0.001,
            "rtt_avg_seconds": 0.004,
            "rtt_max_seconds": 0.01,
            "jitter_seconds": 0.002,
            "error": "",
        }
        for t, a in (("10.1.0.1", "10.1.0.1"), ("collector.halang.gov.vn", "10.0.0.2"))
    ],
    "tcp_checks": [],
    "dns_checks": [],
    "http_checks": [],
    "traceroutes": [],
    "dhcp_servers": [],
    "ip_conflicts": [],
    "skipped": [],
}
INTERVAL = 15.0
SLOW_EVERY = 20  # antivirus and security every 5 min by default: one report in 20 has them
OS_NAMES = (
    "Windows 10 Pro",
    "Windows 11 Pro",
    "Windows 7 Professional",
    "Debian GNU/Linux 12 (bookworm)",
    "Ubuntu 22.04.4 LTS",
)


def reports(agent: int, count: int, rng: random.Random) -> Iterator[Report]:
    """One agent's reports every 15 s, changing as real ones do: disk free, RTT, loss now and
    then, uptime, CPU, memory and traffic counters every report; antivirus and security in one
    report of SLOW_EVERY (the first report carries every section)."""
    hardware: dict[str, Any] = copy.deepcopy(HARDWARE)
    hardware["host"]["os_name"] = OS_NAMES[agent % len(OS_NAMES)]
    hardware["disks"] = hardware["disks"][: 1 + agent % 2]
    link: dict[str, Any] = copy.deepcopy(LINK)
    slow = {"antivirus": ANTIVIRUS, "security": SECURITY}
    at = NOW + agent
    for i in range(count):
        at += INTERVAL
        hardware["host"]["uptime_seconds"] += INTERVAL
        hardware["cpu"]["usage_ratio"] = rng.random()
        hardware["memory"]["available_bytes"] = rng.randrange(GiB, 6 * GiB)
        for d in hardware["disks"]:
            d["free_bytes"] -= rng.randrange(50 * 2**20)
        for n in hardware["interfaces"]:
            n["bytes_sent"] += rng.randrange(10**6)
            n["bytes_recv"] += rng.randrange(10**7)
        for p in link["pings"]:
            p["rtt_avg_seconds"] = rng.uniform(0.002, 0.05)
            p["loss_ratio"] = 0.1 if rng.random() < 0.02 else 0.0
            p["received"] = 10 - round(p["loss_ratio"] * 10)
        sections = {"hardware": copy.deepcopy(hardware), "link": copy.deepcopy(link)}
        if i % SLOW_EVERY == 0:
            sections.update(copy.deepcopy(slow))
        yield Report(i + 1, "boot", at, "0.1.0", sections, [], {"dropped_total": 0, "depth": 0})


Evaluate = Callable[[AgentRecord, Report], None]


def memoized(rules: tuple[Rule, ...]) -> Evaluate:
    """The engine's way: each rule on its own inputs, CEL only when they changed."""
    memo = Memo()

    def run(agent: AgentRecord, report: Report) -> None:
        variables = report_variables(agent, report, INTERVAL)
        for rule in rules:
            memo.judge(rule, variables)

    return run


def one_context(rules: tuple[Rule, ...]) -> Evaluate:
    """Baseline, the previous engine: one context of everything the pack reads per report,
    every rule run on it."""
    prune = pruner(read_tree(frozenset(p for r in rules for p in r.reads)))

    def run(agent: AgentRecord, report: Report) -> None:
        variables = prune(report_variables(agent, report, INTERVAL))
        context = cel.Context(variables)
        for rule in rules:
            if rule.sections.issubset(variables):
                try:
                    rule.program.execute(context)
                except Exception:  # as the engine: no verdict
                    continue

    return run


@dataclass
class Figures:
    cold: list[float]
    fast: list[float]  # steady, hardware + link
    full: list[float]  # steady, every section

    def mean(self, which: str) -> float:
        values: list[float] = getattr(self, which)
        return sum(values) / len(values)


def run(make: Callable[[tuple[Rule, ...]], Evaluate], agents: int, count: int) -> Figures:
    """Process CPU per report, `agents` interleaved as reports arrive, `count` reports each."""
    rules = tuple(r for r in load_pack(PACK).agent_rules() if r.scope.matches(AGENT.placement))
    evaluate = make(rules)
    records = [replace(AGENT, agent_id=f"a{i}", hostname=f"pc-{i:04d}") for i in range(agents)]
    streams = [reports(i, count, random.Random(i)) for i in range(agents)]
    out = Figures([], [], [])
    for step in range(count):
        for record, stream in zip(records, streams, strict=True):
            report = next(stream)
            start = time.process_time()
            evaluate(record, report)
            spent = (time.process_time() - start) * 1e6
            if step == 0:
                out.cold.append(spent)
            else:
                (out.full if "antivirus" in report.sections else out.fast).append(spent)
    return out


def memo_bytes(agents: int) -> int:
    """Memory the memo keeps after one report of each of `agents` (keys, what they reference,
    verdicts); bounded by Memo's per-rule limit whatever the number of agents."""
    rules = tuple(load_pack(PACK).agent_rules())
    tracemalloc.start()
    memo = Memo()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(agents):
        record = replace(AGENT, agent_id=f"a{i}")
        variables = report_variables(record, next(reports(i, 1, random.Random(i))), INTERVAL)
        for rule in rules:
            memo.judge(rule, variables)
    del variables
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return kept


def _row(name: str, new: float, old: float) -> str:
    return f"  {name:44s} {new:7.1f} us/report   baseline {old:7.1f} ({old / new:4.1f}x)"


def main() -> dict[str, Any]:
    rules = len(load_pack(PACK).agent_rules())
    one = {make.__name__: run(make, 1, 2000) for make in (memoized, one_context)}
    many = {make.__name__: run(make, 200, 30) for make in (memoized, one_context)}
    print(f"default pack: {rules} agent rules; reports every 15 s, antivirus + security in 1/20")
    print("baseline: one pruned context per report, every rule run (the previous engine)")
    results: dict[str, Any] = {"agent_rules": rules}
    for label, figures in (("one agent, 2000 reports", one), ("200 agents x 30 reports", many)):
        print(f" {label} (budget 500 us/report):")
        key = "one_agent" if figures is one else "many_agents"
        new, old = figures["memoized"], figures["one_context"]
        for which, name in (
            ("cold", "first report (cold), every section"),
            ("fast", "steady, hardware + link (19 of 20)"),
            ("full", "steady, every section (1 of 20)"),
        ):
            print(_row(name, new.mean(which), old.mean(which)))
            results[f"{key}_{which}_us"] = new.mean(which)
            results[f"{key}_{which}_baseline_us"] = old.mean(which)
        steady = (sum(new.fast) + sum(new.full)) / (len(new.fast) + len(new.full))
        base = (sum(old.fast) + sum(old.full)) / (len(old.fast) + len(old.full))
        print(_row("steady, mean over the sequence", steady, base))
        results[f"{key}_steady_us"] = steady
        results[f"{key}_steady_baseline_us"] = base
    kept = memo_bytes(200)
    print(f"  memo after 200 agents: {kept / 1024:.0f} KiB (at most 4096 verdicts per rule)")
    results["memo_bytes_200_agents"] = kept
    return results


if __name__ == "__main__":
    main()
