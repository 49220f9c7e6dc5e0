"""CPU of the alert engine's timer tick over one commune, with commune.signatures counting
agent-rule verdicts vs filtering `members` (the previous rule): python -m bench.fleet_tick."""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.model import Report
from agent.transport.encode import to_pb
from bench.fleet import simulated_antivirus, simulated_hardware, simulated_link
from collector.alerts.engine import AlertEngine
from collector.compliance.evaluate import keyer, pruner, read_tree
from collector.compliance.loader import check_condition, load_pack
from collector.compliance.model import RulePack
from collector.decode import decode_report
from collector.model import Placement
from collector.store import MachineFacts, Store

PACK = Path(__file__).resolve().parent.parent / "rules" / "default.yaml"
PLACE = Placement("Cao Bằng", "Hạ Lang", "An Lạc", "", "workstation")
# commune.signatures before it counted verdicts: `filter` is quadratic in the CEL binding.
FILTER_MEMBERS = """
group.machines == 0 || !members.exists(m, has(m.antivirus)) ||
members.filter(m, has(m.antivirus) && m.antivirus.products.exists(p, p.state != "") &&
  (m.antivirus.signature_updated_at > 0.0
   ? now - m.antivirus.signature_updated_at <= 259200.0
   : !m.antivirus.products.exists(p, p.state == "on" && p.signatures == "out_of_date"))
).size() * 100 >= group.machines * 95
"""


def filtering_members(pack: RulePack) -> RulePack:
    """The pack with commune.signatures as it was: a `members.filter` comprehension."""
    program, reads, problems = check_condition(FILTER_MEMBERS, "fleet")
    assert program is not None, problems
    tree = read_tree(reads)
    rule = pack.get("commune.signatures")
    assert rule is not None
    old = dataclasses.replace(
        rule,
        condition=FILTER_MEMBERS,
        program=program,
        inputs=pruner(tree),
        key=keyer(tree),
        reads=reads,
        counts=frozenset(),
    )
    return RulePack(tuple(old if r.id == old.id else r for r in pack.rules), pack.files)


def tick_seconds(agents: int, pack: RulePack, ticks: int = 3) -> float:
    """Median process CPU of one tick of an engine whose store holds `agents` agents of one
    commune, each with a hardware, antivirus and link snapshot and its agent-rule verdicts."""
    rng = random.Random(5)
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/tick.db", sqlite_synchronous="off")
        token = store.create_token(PLACE, 86400, now)[1]
        engine = AlertEngine(
            store,
            pack,
            PACK,
            report_interval=60.0,
            silent_after_intervals=3,
            default_hold=300.0,
        )
        engine.start()
        try:
            for i in range(agents):
                facts = MachineFacts(f"tick-{i}", f"pc-{i:05d}", "Windows", "10", "bench")
                agent = store.enroll(token, facts, now).agent
                report = Report(
                    int(now * 1000),
                    "b",
                    "bench",
                    hardware=simulated_hardware(rng, facts.hostname),
                    antivirus=simulated_antivirus(rng, now),
                    link=simulated_link(rng),
                    seq=1,
                )
                stored = decode_report(to_pb(report), now)
                store.ingest(agent.agent_id, [stored], now)
                engine.submit(agent, [stored])
            engine.drain(600.0)
            spent = []
            for _ in range(ticks):
                start = time.process_time()
                engine.tick(now + 30).result(3600.0)
                spent.append(time.process_time() - start)
        finally:
            engine.stop()
            store.close()
    return sorted(spent)[len(spent) // 2]


def main() -> dict[str, Any]:
    pack = load_pack(PACK)
    old = filtering_members(pack)
    results: dict[str, Any] = {}
    print("alert engine tick, one commune (process CPU, median of 3 ticks)")
    for agents in (200, 770):
        before, after = tick_seconds(agents, old), tick_seconds(agents, pack)
        print(f"  {agents:6d} agents: members.filter {before:7.3f} s, counts {after:6.3f} s")
        results[f"tick_{agents}_filter_s"] = before
        results[f"tick_{agents}_counts_s"] = after
    return results


if __name__ == "__main__":
    main()
