"""The refusal words between the collector's auth and the agent: revoked and retired are for
good, anything else (unknown, a collector older than the words, a local failure) is not."""

from __future__ import annotations

from pathlib import Path

from agent.cli import CRITICAL, status_verdict
from agent.identity import Credential, Refusal, load_refusal, save_credential, save_refusal
from agent.transport.client import DeliveryError
from agent.transport.wire import StatusCode
from canhgac_common import refusal


def test_the_reason_is_the_first_word_of_the_details() -> None:
    said = refusal.details(refusal.REVOKED, "agent a1 was revoked at 2026-12-03T17:00:00+07:00")
    assert refusal.reason(said) == "revoked"
    assert refusal.reason("retired: agent a1 was retired") == "retired"
    assert refusal.reason("agent a1 was revoked") is None  # an older collector: no word
    assert refusal.reason("whatever: else") is None


def test_only_a_revocation_or_retirement_from_the_collector_is_final() -> None:
    unauth = StatusCode.UNAUTHENTICATED
    assert DeliveryError(unauth, "revoked: agent a1 was revoked").final
    assert DeliveryError(unauth, "retired: agent a1 was retired").final
    assert not DeliveryError(unauth, "unknown: unknown credential").final
    assert not DeliveryError(unauth, "agent a1 was revoked").final  # no word: keep trying
    assert not DeliveryError(StatusCode.UNAVAILABLE, "revoked: no").final
    assert not DeliveryError(unauth, "revoked: said locally", local=True).final


def test_status_is_critical_with_the_refusal_and_what_to_do() -> None:
    r = Refusal("a1", "collector:4317", "revoked", "revoked: agent a1 was revoked", 1.0e9)
    code, reason = status_verdict(None, None, None, now=2e9, warn_backlog=45, refused=r)
    assert code == CRITICAL
    assert reason.startswith("revoked by the collector at ")
    assert "re-enroll with a new token" in reason and "collector:4317" in reason
    retired = Refusal("a1", "c:4317", "retired", "retired: out of service", 1.0e9)
    _, why = status_verdict(None, None, None, now=2e9, warn_backlog=45, refused=retired)
    assert why.startswith("retired by the collector at ") and "out of service" in why


def test_a_new_enrollment_clears_the_refusal(tmp_path: Path) -> None:
    state = tmp_path
    save_refusal(state, Refusal("a1", "c:4317", "revoked", "revoked: x", 1.0))
    assert load_refusal(state, "a1") is not None
    assert load_refusal(state, "a2") is None  # another agent id: not this one's
    save_credential(state, Credential("c:4317", "a2", "a2.secret", 15))
    assert load_refusal(state, "a1") is None
    (state / "refused.json").write_text("{not json")
    assert load_refusal(state, "a1") is None  # unreadable counts as none
