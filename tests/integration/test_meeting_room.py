"""A scheduled meeting makes the Submit ack ask the room for a fresh check; the agent answers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.config import DeliveryConfig
from agent.probes.base import CollectorLink
from agent.probes.hardware import HardwareProbe
from agent.probes.meeting_room import MeetingRoomOptions, MeetingRoomProbe
from agent.runner import Runner, Scheduled
from agent.spool import Spool
from agent.transport.client import CollectorClient, MachineFacts, SubmitResult
from tests.integration.harness import collector_config, start_collector, wait_until
from tests.integration.test_end_to_end import samples
from tests.unit.test_meeting_room import FakePs, fake_pinger, fake_querycap, fake_tree

pytestmark = pytest.mark.timeout(120)


class CountingRoomProbe(MeetingRoomProbe):
    calls = 0

    def collect(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().collect()


def test_meeting_check_points_ask_the_room_and_silent_rooms_are_not_ready(
    tmp_path: Path,
) -> None:
    # The collector's clock is the test's: it jumps to each check point of the meeting.
    shift = [0.0]
    collector = start_collector(
        collector_config(tmp_path / "c.db"), clock=lambda: time.time() + shift[0]
    )
    stop = threading.Event()
    loop: threading.Thread | None = None
    try:
        store = collector.app.store
        meeting = store.meetings.add_meeting(
            "Giao ban", time.time() + 7200, 3600, ["Thanh Nhật"], 0
        )
        secrets = []
        for host in ("phong-hop-thanhnhat", "phong-hop-du-phong"):
            token = collector.token("Thanh Nhật", role="meeting-room")
            with CollectorClient(collector.address) as c:
                facts = MachineFacts(host, host, "Linux", "6.1", "0.1.0")
                secrets.append(c.enroll(token, facts).secret)

        client = collector.client(secrets[0])
        options = MeetingRoomOptions.model_validate(
            {
                "endpoints": ["127.0.0.2"],
                "ping_collector": False,
                "count": 3,
                "throughput": {"bytes": "64KiB"},
                # The test moves the collector's clock by hours; that is not the room's fault.
                "readiness": {"max_clock_offset": "1d"},
            }
        )
        dev, proc, sys = fake_tree(tmp_path)
        room = CountingRoomProbe(
            options,
            system=lambda: "Linux",
            ps=FakePs(),
            dev_root=dev,
            proc_root=proc,
            sys_root=sys,
            querycap=fake_querycap,
            pinger=fake_pinger,
        )
        room.connect(
            CollectorLink(client.address, client.throughput, client.clock_offset, client.upload)
        )
        asked: list[tuple[str, ...]] = []

        def submit(payloads: list[bytes]) -> SubmitResult:
            result = client.submit(payloads)
            asked.append(result.fresh_checks)
            return result

        schedule = {
            # The room's own interval is an hour: only the collector's request runs it again.
            "meeting_room": Scheduled(room, 3600.0),
            "hardware": Scheduled(HardwareProbe(), 0.2),
        }
        runner = Runner(
            schedule, Spool(tmp_path / "spool.db", 1 << 24, 86400), submit, DeliveryConfig(pace=0.0)
        )
        loop = threading.Thread(target=runner.run, args=(stop,))
        loop.start()
        wait_until(lambda: len(asked) >= 3, 20, "a few deliveries")
        assert room.calls == 1 and not any(asked)  # more than an hour before: nothing asked

        for check_point in (3600.0, 900.0):  # T-60 min, then T-15 min
            before, acks = room.calls, len(asked)
            shift[0] = 7200 - check_point + 60
            wait_until(
                lambda before=before: room.calls > before,  # type: ignore[misc]
                20,
                f"the T-{check_point / 60:.0f} check",
            )
            assert ("meeting_room",) in asked[acks:]
            wait_until(
                lambda: not any(asked[-3:]) and len(asked) > 3,
                20,
                "acks without a request once the fresh check is stored",
            )
            assert room.calls == before + 1  # asked until answered, answered once

        summary = collector.app.meetings.status(meeting.id, time.time() + shift[0])
        verdicts = {r.name.split("(")[1].rstrip(")"): (r.verdict, r.state) for r in summary.rooms}
        assert verdicts == {
            "phong-hop-thanhnhat": ("go", "green"),
            "phong-hop-du-phong": ("no-go", "silent"),  # never answered: not ready
        }
        assert (summary.verdict, summary.ready, summary.expected) == ("no-go", 1, 2)
        answering = next(r.agent_id for r in summary.rooms if r.state != "silent")
        section = store.snapshot(answering)["meeting_room"]
        # The offset the agent measured from the acks is the clock jump the test made.
        assert section["clock"]["known"] is True
        assert section["clock"]["offset_seconds"] == pytest.approx(shift[0], abs=5)

        text = collector.app.exposition.render().decode()
        [(labels, ready)] = samples(text, "canhgac_meeting_room_ready")
        assert (labels["agent_id"], labels["role"], ready) == (answering, "meeting-room", 2.0)

        # At the start the verdicts become history (the app's timer does this every 30 s).
        shift[0] = 7200 + 10
        (recorded,) = collector.app.meetings.record_started(time.time() + shift[0])
        assert recorded.meeting.id == meeting.id and (recorded.ready, recorded.expected) == (1, 2)
        assert store.meetings.meeting_results(meeting.id) == list(recorded.rooms)
    finally:
        stop.set()
        if loop is not None:
            loop.join(10)
        collector.app.stop()
