"""Why the collector refused an agent's credential: the first word of the UNAUTHENTICATED
status details, so an agent tells "revoked for good" from "unknown, maybe for now".

The collector writes `details(reason, text)`; the agent reads `reason(details)`. Both sides
import this module because neither may import the other.
"""

from __future__ import annotations

__all__ = ["FINAL", "MALFORMED", "MISSING", "RETIRED", "REVOKED", "UNKNOWN", "details", "reason"]

MISSING = "missing"  # no Bearer credential in the call
MALFORMED = "malformed"  # not `<agent_id>.<secret>`
UNKNOWN = "unknown"  # no such agent, or the secret does not match (a restored store, a typo)
REVOKED = "revoked"  # `canhgac-collector agent revoke`: refused from then on
RETIRED = "retired"  # `canhgac-collector agent retire`: the machine left service

# Refusals an agent stops delivering on: retrying cannot change them, only a new enrollment.
FINAL = frozenset({REVOKED, RETIRED})

_REASONS = frozenset({MISSING, MALFORMED, UNKNOWN, REVOKED, RETIRED})


def details(why: str, text: str) -> str:
    """The status details: the reason word, a colon, the sentence for a person."""
    return f"{why}: {text}"


def reason(status_details: str) -> str | None:
    """The reason word of refusal details, or None (a collector older than the words)."""
    word = status_details.partition(":")[0].strip()
    return word if word in _REASONS else None
