"""The org tree (province -> district -> commune -> unit) and what each place should have."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from canhgac_common.config import ConfigError, StrictModel, load_model
from canhgac_common.i18n import gettext_ as _

__all__ = ["Commune", "District", "Sites", "Unit", "load_sites"]


class Unit(StrictModel):
    name: str
    machines: int = Field(default=0, ge=0)
    meeting_rooms: int = Field(default=0, ge=0)


class Commune(StrictModel):
    name: str
    kind: str = Field(default="commune", pattern="^(commune|town|ward)$")
    machines: int = Field(default=0, ge=0)
    meeting_rooms: int = Field(default=0, ge=0)
    units: list[Unit] = []


class District(StrictModel):
    name: str
    units: list[Unit] = []
    communes: list[Commune] = []

    @model_validator(mode="after")
    def _unique(self) -> District:
        for twice, names in (
            (_("commune {name!r} listed twice"), [c.name for c in self.communes]),
            (_("unit {name!r} listed twice"), [u.name for u in self.units]),
        ):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(twice.format(name=sorted(dup)[0]))
        return self


class Sites(StrictModel):
    province: str
    districts: list[District]

    def names(self) -> set[str]:
        """Every district, commune and unit name in the tree."""
        out = set()
        for d in self.districts:
            out.add(d.name)
            out.update(u.name for u in d.units)
            for c in d.communes:
                out.add(c.name)
                out.update(u.name for u in c.units)
        return out

    def check_place(self, district: str, commune: str | None, unit: str | None) -> None:
        """Raise ConfigError unless the place exists in the tree."""
        d = next((d for d in self.districts if d.name == district), None)
        if d is None:
            known = ", ".join(x.name for x in self.districts)
            raise ConfigError(
                _("unknown district {district!r} (sites file has: {known})").format(
                    district=district, known=known
                )
            )
        units = d.units
        if commune:
            c = next((c for c in d.communes if c.name == commune), None)
            if c is None:
                known = ", ".join(x.name for x in d.communes)
                raise ConfigError(
                    _("unknown commune {commune!r} in {district} (known: {known})").format(
                        commune=commune, district=district, known=known
                    )
                )
            units = c.units
        if unit and unit not in {u.name for u in units}:
            where = f"{commune}, {district}" if commune else district
            known = ", ".join(u.name for u in units) or _("none")
            raise ConfigError(
                _("unknown unit {unit!r} in {where} (known: {known})").format(
                    unit=unit, where=where, known=known
                )
            )


def load_sites(path: Path) -> Sites:
    return load_model(Sites, path)
