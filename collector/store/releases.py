"""The releases table: signed manifests and their rollout (package files live in releases.dir)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from collector.errors import InvalidRequest
from collector.model import Release, ReleasePlace
from collector.store.base import Part
from collector.store.schema import releases

__all__ = ["ReleaseTables"]


def _release(row: Any) -> Release:
    return Release(
        version=row.version,
        channel=row.channel,
        manifest=bytes(row.manifest),
        signature=bytes(row.signature),
        added_at=row.added_at,
        rolled_out_at=row.rolled_out_at,
        share=row.share,
        places=tuple(ReleasePlace(**p) for p in json.loads(row.places or "[]")),
        report_within=row.report_within,
        withdrawn_at=row.withdrawn_at,
    )


class ReleaseTables(Part):
    def add(
        self,
        version: str,
        *,
        channel: str,
        manifest: bytes,
        signature: bytes,
        now: float,
        report_within: float,
    ) -> None:
        """A new release, not offered to anyone until `rollout`; a version is added once."""
        try:
            with self._write() as conn:
                conn.execute(
                    releases.insert().values(
                        version=version,
                        channel=channel,
                        manifest=manifest,
                        signature=signature,
                        added_at=now,
                        share=0,
                        places="[]",
                        report_within=report_within,
                    )
                )
        except IntegrityError:
            raise InvalidRequest(f"release {version} exists already") from None

    def all(self) -> list[Release]:
        with self._read() as conn:
            rows = conn.execute(select(releases).order_by(releases.c.added_at)).all()
        return [_release(r) for r in rows]

    def get(self, version: str) -> Release | None:
        with self._read() as conn:
            row = conn.execute(select(releases).where(releases.c.version == version)).first()
        return None if row is None else _release(row)

    def rollout(
        self,
        version: str,
        share: int,
        places: Sequence[ReleasePlace],
        now: float,
        report_within: float | None = None,
    ) -> None:
        """Offer the release to `share` % of its channel's agents (within `places` if any);
        the time a version must be reported in counts from this rollout."""
        values: dict[str, Any] = {
            "share": share,
            "places": json.dumps([p.as_dict() for p in places], ensure_ascii=False),
            "rolled_out_at": now,
        }
        if report_within is not None:
            values["report_within"] = report_within
        self._change_one(
            update(releases)
            .where(releases.c.version == version, releases.c.withdrawn_at.is_(None))
            .values(**values),
            f"no release {version} that is not withdrawn",
        )

    def withdraw(self, version: str, now: float) -> None:
        self._change_one(
            update(releases)
            .where(releases.c.version == version, releases.c.withdrawn_at.is_(None))
            .values(withdrawn_at=now),
            f"no release {version} that is not withdrawn",
        )
