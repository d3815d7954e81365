"""Admin page render times with the full catalog (Django test client, real PostgreSQL).

Run: ``.venv/bin/python -m bench.admin_pages [--repeat N]``. Uses the benchmark database
(``bench``, see bench/common.py), which must hold the full catalog (``python -m
bench.freshness`` loads it). Read-only apart from a throwaway superuser. Target: every page
under 300 ms. Writes ``bench/results/admin_pages.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.common import RESULTS, apply_env, require_services


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="requests per page (default 20)")
    args = parser.parse_args()
    apply_env({"SEARCH_API_RATE_LIMIT": "0"})
    import django

    django.setup()
    require_services()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from portal.models import Package, Section, Tag

    settings.ALLOWED_HOSTS = ["testserver"]
    total = Package.objects.count()
    if total < 60_000:
        raise SystemExit(f"the bench database holds {total} packages; load the catalog first")
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    tag = Tag.objects.get(facet="interface", value="x11")
    big = Package.objects.order_by("-reverse_dependency_count").first()
    many_deps = max(
        Package.objects.filter(name__startswith="task-"), key=lambda p: p.dependencies.count()
    )
    pages = {
        "package list (unfiltered)": ("/admin/portal/package/", {}),
        "package list (tag interface::x11)": (
            "/admin/portal/package/",
            {"tag_facet": "interface", "tag": tag.pk},
        ),
        "package list (section + priority)": (
            "/admin/portal/package/",
            {
                "section__id__exact": Section.objects.get(name="python").pk,
                "priority__exact": "optional",
            },
        ),
        "package list (search 'python')": ("/admin/portal/package/", {"q": "python"}),
        "package list (maintainer contains 'debian')": (
            "/admin/portal/package/",
            {"maintainer_name": "debian"},
        ),
        f"change form ({big.name})": (f"/admin/portal/package/{big.pk}/change/", {}),
        f"change form ({many_deps.name})": (f"/admin/portal/package/{many_deps.pk}/change/", {}),
        "maintainer list": ("/admin/portal/maintainer/", {}),
        "tag autocomplete": (
            "/admin/autocomplete/",
            {"term": "inter", "app_label": "portal", "model_name": "package", "field_name": "tags"},
        ),
        "search status page": ("/admin/indexing/outboxentry/status/", {}),
    }
    rows = []
    for label, (url, params) in pages.items():
        client.get(url, params)  # warm
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.get(url, params)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (label, response.status_code)
        times.sort()
        rows.append(
            {
                "page": label,
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                "max_ms": round(times[-1], 1),
            }
        )
    ok = all(r["p95_ms"] < 300 for r in rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "admin_pages.json").write_text(
        json.dumps(
            {
                "packages": total,
                "repeat": args.repeat,
                "target_ms": 300,
                "rows": rows,
                "all_under_target": ok,
            },
            indent=2,
        )
    )
    lines = [
        f"# Admin pages with {total:,} packages ({args.repeat} requests each, test client)",
        "",
        "| page | p50 ms | p95 ms | max ms |",
        "| --- | --- | --- | --- |",
        *[f"| {r['page']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} |" for r in rows],
        "",
        f"Target: every page under 300 ms at p95: **{'met' if ok else 'NOT met'}**.",
    ]
    (RESULTS / "admin_pages.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
