"""Central agent settings as stored: each layer's versions, who changed it, when and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select

from canhgac_common.i18n import gettext_ as _
from collector.errors import CollectorError
from collector.store.base import Part
from collector.store.schema import settings_layers

__all__ = ["LayerVersion", "SettingsTables", "StaleLayer"]


class StaleLayer(CollectorError):
    """The layer changed since it was read: someone else stored a version meanwhile."""


@dataclass(frozen=True)
class LayerVersion:
    layer: str  # as collector.agent_settings.Layer writes it
    version: int
    document: dict[str, Any]
    author: str
    reason: str
    created_at: float
    change_id: int


def _version(row: Any) -> LayerVersion:
    return LayerVersion(
        layer=row.layer,
        version=row.version,
        document=json.loads(row.document),
        author=row.author,
        reason=row.reason,
        created_at=row.created_at,
        change_id=row.change_id,
    )


class SettingsTables(Part):
    def latest_change(self) -> int:
        """The id of the newest change (0: none): what tells a cache to read the layers again."""
        with self._read() as conn:
            return int(conn.execute(select(func.max(settings_layers.c.change_id))).scalar() or 0)

    def current(self) -> list[LayerVersion]:
        """The newest version of every layer that has a document (a removed layer is gone)."""
        newest = (
            select(settings_layers.c.layer, func.max(settings_layers.c.version).label("v"))
            .group_by(settings_layers.c.layer)
            .subquery()
        )
        query = (
            select(settings_layers)
            .join(
                newest,
                (settings_layers.c.layer == newest.c.layer)
                & (settings_layers.c.version == newest.c.v),
            )
            .order_by(settings_layers.c.layer)
        )
        with self._read() as conn:
            rows = [_version(r) for r in conn.execute(query)]
        return [r for r in rows if r.document]

    def in_force(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """(newest change id, the document of every layer in force), read together."""
        change = self.latest_change()
        return change, {v.layer: v.document for v in self.current()}

    def history(self, layer: str | None = None) -> list[LayerVersion]:
        """Every change, oldest first (of one layer when given)."""
        query = select(settings_layers).order_by(settings_layers.c.change_id)
        if layer is not None:
            query = query.where(settings_layers.c.layer == layer)
        with self._read() as conn:
            return [_version(r) for r in conn.execute(query)]

    def layer(self, layer: str) -> LayerVersion | None:
        """The newest version of `layer` (its document may be empty: removed), None if never set."""
        query = (
            select(settings_layers)
            .where(settings_layers.c.layer == layer)
            .order_by(settings_layers.c.version.desc())
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _version(row)

    def change(
        self,
        layer: str,
        document: dict[str, Any],
        *,
        author: str,
        reason: str,
        now: float,
        after: int,
    ) -> int:
        """Store `document` as the next version of `layer` after version `after` (0: new);
        StaleLayer when another change came first. Returns the new version."""
        version = after + 1
        with self._write() as conn:
            newest = conn.execute(
                select(func.max(settings_layers.c.version)).where(settings_layers.c.layer == layer)
            ).scalar()
            if (newest or 0) != after:
                raise StaleLayer(
                    _("{layer} changed meanwhile (now version {v}): read it again").format(
                        layer=layer, v=newest
                    )
                )
            conn.execute(
                insert(settings_layers).values(
                    layer=layer,
                    version=version,
                    document=json.dumps(document, ensure_ascii=False, sort_keys=True),
                    author=author,
                    reason=reason,
                    created_at=now,
                )
            )
        return version
