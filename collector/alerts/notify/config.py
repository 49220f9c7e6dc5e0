"""The `notify:` section of the collector config: SMTP, recipients, digests, escalation,
meeting go/no-go summaries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from canhgac_common.config import Duration, StrictModel, TimeZone
from canhgac_common.i18n import gettext_ as _

__all__ = [
    "AlertmanagerConfig",
    "DigestConfig",
    "EscalationConfig",
    "NotifyConfig",
    "Recipient",
    "RetryConfig",
    "SmtpConfig",
]

Language = Literal["vi", "en"]
Severity = Literal["critical", "high", "medium", "low"]
Role = Literal["it", "commune", "district"]
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class SmtpConfig(StrictModel):
    """The password comes from an environment variable or a file, never from this YAML."""

    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "plain"] = "starttls"
    username: str = ""
    password_env: str = ""
    password_file: Path | None = None
    from_address: str = "canhgac@localhost"
    timeout: Duration = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_password_source(self) -> SmtpConfig:
        if self.password_env and self.password_file is not None:
            raise ValueError(_("set password_env or password_file, not both"))
        return self

    def password(self) -> str:
        """Read at each connection so a rotated secret needs no restart; never logged."""
        if self.password_env:
            return os.environ.get(self.password_env, "")
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return ""


class Recipient(StrictModel):
    """One person or mailbox list. `role` decides what it receives (docs/notifications.md)."""

    name: str = Field(min_length=1)
    to: list[str] = Field(min_length=1)
    # it: every alert of `severities` at once, anywhere (within district/commune if set);
    # commune: alerts of `severities` in its commune; district: digests and escalations.
    role: Role
    district: str = ""
    commune: str = ""
    severities: list[Severity] = ["critical"]
    language: Language | None = None  # the section's language when unset

    @model_validator(mode="after")
    def _place(self) -> Recipient:
        if self.role == "commune" and not (self.district and self.commune):
            raise ValueError(_("a commune recipient needs district and commune"))
        return self


class DigestConfig(StrictModel):
    daily_at: str | None = Field(default="07:30", pattern=_HHMM)  # in the config's `timezone`
    weekly_on: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = "mon"
    weekly_at: str = Field(default="07:30", pattern=_HHMM)
    # The month's report (`canhgac-collector report`, its PDF summary attached) for the month
    # before, on this day of the month; None = no monthly mail.
    monthly_day: int | None = Field(default=1, ge=1, le=28)
    monthly_at: str = Field(default="07:30", pattern=_HHMM)


class EscalationConfig(StrictModel):
    """A firing alert of `severities` not acknowledged within `after` goes to `to`."""

    after: Duration | None = Field(default=4 * 3600.0, gt=0)
    # A commune link down (high) nobody has taken up reaches the leadership too.
    severities: list[Severity] = ["critical", "high"]
    to: Literal["commune", "district"] = "district"


class RetryConfig(StrictModel):
    max_attempts: int = Field(default=10, ge=1)
    backoff: Duration = Field(default=60.0, gt=0)  # doubles after each failed attempt
    max_backoff: Duration = Field(default=3600.0, gt=0)


class AlertmanagerConfig(StrictModel):
    url: str = ""  # e.g. http://127.0.0.1:9093; empty = off
    # Forwarded: notified alerts of these severities, as mail goes to IT staff by severity.
    severities: list[Severity] = ["critical", "high"]
    resend_every: Duration = Field(default=60.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)


class NotifyConfig(StrictModel):
    """Off unless `enabled`; the notifier reads the alert engine's outbox (docs/rules.md)."""

    enabled: bool = False
    every: Duration = Field(default=15.0, ge=1)
    language: Language = "vi"
    # The zone of every time a message shows (with its offset) and of the digest schedule,
    # whatever the server's own zone (often UTC).
    timezone: TimeZone = "Asia/Ho_Chi_Minh"
    grafana_url: str = ""
    # An alert mail to one recipient at most this often; alerts in between wait and go
    # together in the next message, so an incident storm becomes one message.
    rate_limit: Duration = Field(default=600.0, ge=0)
    smtp: SmtpConfig = SmtpConfig()
    recipients: list[Recipient] = []
    digest: DigestConfig = DigestConfig()
    escalation: EscalationConfig = EscalationConfig()
    retry: RetryConfig = RetryConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
    # The go/no-go summary of each meeting goes this long before it starts (null = none). Keep
    # it shorter than the last `meetings.checks_before` lead so the rooms can answer that
    # check first (the collector refuses a config where it is not).
    meeting_summary_before: Duration | None = Field(default=600.0, gt=0)
    meeting_summary_roles: list[Role] = ["it", "district", "commune"]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _unique_names(self) -> NotifyConfig:
        names = [r.name for r in self.recipients]
        if len(names) != len(set(names)):
            raise ValueError(_("recipient names must be unique"))
        return self
