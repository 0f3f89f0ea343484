"""Dependency resolution: which packages to install, dependencies before dependants.

Contract: `resolve(wanted, available, installed)` returns the index records to install in an
order where every Depends group is met by an installed package or an earlier record, or raises
`ResolveError` with one line ("a depends on b (>= 2), which no repository package satisfies").
The first alternative of a group that can be met is chosen (as apt does without preferences);
Provides without a version counts for an unversioned dependency. Cycles (Debian has some, e.g.
libc6 <-> libgcc-s1) are allowed: a package on the current path counts as met."""

from __future__ import annotations

from tradekernel.kernel.pkg.control import ControlError, Relation, compare_versions, parse_depends
from tradekernel.kernel.pkg.params import ARCHITECTURES


class ResolveError(ValueError):
    pass


def _provides(record: dict[str, str]) -> set[str]:
    return {item.split("(")[0].strip() for item in record.get("Provides", "").split(",") if item}


def _meets(relation: Relation, record: dict[str, str]) -> bool:
    if record["Package"] == relation.name:
        return relation.satisfied_by(record["Version"])
    return relation.op is None and relation.name in _provides(record)


def best(
    name: str, available: list[dict[str, str]], relation: Relation | None = None
) -> dict[str, str] | None:
    """The newest record for this machine named `name` (or meeting `relation`), or None."""
    relation = relation or Relation(name)
    fits = [r for r in available if r.get("Architecture") in ARCHITECTURES and _meets(relation, r)]
    exact = [r for r in fits if r["Package"] == relation.name] or fits
    newest = None
    for record in exact:
        if newest is None or compare_versions(record["Version"], newest["Version"]) > 0:
            newest = record
    return newest


def resolve(
    wanted: list[str], available: list[dict[str, str]], installed: dict[str, dict[str, str]]
) -> list[dict[str, str]]:
    order: list[dict[str, str]] = []
    chosen: dict[str, dict[str, str]] = {}

    def met(relation: Relation) -> bool:
        return any(_meets(relation, r) for r in (*installed.values(), *chosen.values()))

    def visit(record: dict[str, str]) -> None:
        chosen[record["Package"]] = record
        try:
            groups = parse_depends(record.get("Depends", "")) + parse_depends(
                record.get("Pre-Depends", "")
            )
        except ControlError as error:
            raise ResolveError(f"{record['Package']}: {error}") from None
        for group in groups:
            if any(met(relation) for relation in group):
                continue
            for relation in group:
                candidate = best(relation.name, available, relation)
                if candidate is not None:
                    visit(candidate)
                    break
            else:
                wants = " | ".join(str(relation) for relation in group)
                raise ResolveError(
                    f"{record['Package']} depends on {wants}, which no repository package satisfies"
                )
        order.append(record)

    for name in wanted:
        if name in installed or name in chosen:
            continue
        record = best(name, available)
        if record is None:
            others = sorted({r.get("Architecture", "?") for r in available if r["Package"] == name})
            if others:
                raise ResolveError(f"{name}: only for {', '.join(others)}, this machine runs i386")
            raise ResolveError(f"{name}: no such package in the repository")
        visit(record)
    return order
