"""CPU per report of the default rule pack (budget 500 us): python bench/rules.py."""

from __future__ import annotations

import time
from pathlib import Path

import cel

from collector.compliance.evaluate import judge, prune, read_tree, report_variables
from collector.compliance.loader import load_pack
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
SECTIONS = {"hardware": HARDWARE, "antivirus": ANTIVIRUS, "security": SECURITY, "link": LINK}
REPORT = Report(1, "boot", NOW, "0.1.0", SECTIONS, [], {"dropped_total": 0})


# With the default probe intervals (antivirus and security every 5 min) most 15 s reports
# carry only these sections, and rules reading the others give no verdict on them.
FREQUENT = Report(1, "boot", NOW, "0.1.0", {k: SECTIONS[k] for k in ("hardware", "link")}, [], {})


def per_report(n: int, one_context: bool, report: Report = REPORT) -> float:
    """Microseconds of CPU to judge every agent rule on one report."""
    pack = load_pack(PACK)
    rules = pack.agent_rules()
    reads = read_tree(pack.agent_reads()) if one_context else None
    start = time.process_time()
    for _ in range(n):
        variables = prune(report_variables(AGENT, report, 15.0), reads)
        context = cel.Context(variables) if one_context else None
        for rule in rules:
            verdict = judge(rule, variables, context)
            assert verdict is not None or not rule.sections.issubset(variables)
    return (time.process_time() - start) / n * 1e6


def main() -> dict[str, float]:
    n = 2000
    rules = len(load_pack(PACK).agent_rules())
    shared = per_report(n, one_context=True)
    fresh = per_report(n // 10, one_context=False)  # ~25 ms each: fewer runs suffice
    print(f"default pack: {rules} agent rules per report, {n} reports")
    print(f"  pruned, one context/report  : {shared:7.1f} us/report (budget 500)")
    print(f"  unpruned dict per evaluation: {fresh:7.1f} us/report ({fresh / shared:.1f}x)")
    frequent = per_report(n, one_context=True, report=FREQUENT)
    print(f"  hardware + link only (most 15 s reports with default intervals): {frequent:7.1f} us")
    return {
        "agent_rules": rules,
        "us_per_report": shared,
        "unpruned_us_per_report": fresh,
        "frequent_us_per_report": frequent,
    }


if __name__ == "__main__":
    main()
