"""Dependencies between packages and the reverse-dependency count (the popularity signal).

All functions work in set-based SQL, so they serve one package edited in the admin and the
63k-package import alike. Changing ``reverse_dependency_count`` is an UPDATE of the package
row, so the row-version trigger bumps the package's version and indexing picks it up.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

from portal.models import Dependency, DependencyKind, Package


def set_dependencies(
    package: Package, depends: Iterable[str], recommends: Iterable[str]
) -> set[int]:
    """Replace ``package``'s dependencies; return the ids of packages whose count changed."""
    wanted = {(DependencyKind.DEPENDS.value, n) for n in _clean(depends)} | {
        (DependencyKind.RECOMMENDS.value, n) for n in _clean(recommends)
    }
    with transaction.atomic():
        current = {
            (kind, name): (pk, target_id)
            for pk, kind, name, target_id in Dependency.objects.filter(package=package).values_list(
                "pk", "kind", "target_name", "target_id"
            )
        }
        removed = [current[key] for key in current.keys() - wanted]
        added = sorted(wanted - current.keys())
        affected: set[int] = {t for _, t in removed if t} if removed else set()
        if removed:
            Dependency.objects.filter(pk__in=[pk for pk, _ in removed]).delete()
        if added:
            targets = dict(
                Package.objects.filter(name__in=[n for _, n in added]).values_list("name", "pk")
            )
            Dependency.objects.bulk_create(
                Dependency(package=package, kind=k, target_name=n, target_id=targets.get(n))
                for k, n in added
            )
            affected |= {targets[n] for _, n in added if n in targets}
        return recompute_reverse_counts(affected) if affected else set()


def link_targets(names: Iterable[str] | None = None) -> int:
    """Point dangling dependencies at packages that now exist (all, or only ``names``)."""
    sql = """
        UPDATE portal_dependency d SET target_id = p.id
        FROM portal_package p
        WHERE d.target_name = p.name AND d.target_id IS NULL
    """
    params: list[object] = []
    if names is not None:
        names = list(names)
        if not names:
            return 0
        sql += " AND p.name = ANY(%s)"
        params.append(names)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def recompute_reverse_counts(package_ids: Iterable[int] | None = None) -> set[int]:
    """Recount dependents for the given packages (or all); return ids whose count changed.

    Only rows whose count really changes are updated, so a re-import that changes nothing
    bumps no row versions and causes no reindexing.
    """
    where = ""
    params: list[object] = [DependencyKind.DEPENDS.value]
    if package_ids is not None:
        ids = list(package_ids)
        if not ids:
            return set()
        where = "AND p.id = ANY(%s)"
        params.append(ids)
    sql = f"""
        UPDATE portal_package p
        SET reverse_dependency_count = c.n
        FROM (
            SELECT p2.id, COUNT(DISTINCT d.package_id) AS n
            FROM portal_package p2
            LEFT JOIN portal_dependency d ON d.target_id = p2.id AND d.kind = %s
            WHERE TRUE {where.replace("p.id", "p2.id")}
            GROUP BY p2.id
        ) c
        WHERE p.id = c.id AND p.reverse_dependency_count <> c.n
        RETURNING p.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _clean(names: Iterable[str]) -> set[str]:
    return {n.strip() for n in names if n and n.strip()}
