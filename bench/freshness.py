"""Freshness benchmark: how long after an edit commits is it findable in search?

    .venv/bin/python -m bench.freshness [--edits 240] [--rate 5] [--timeout 30]

1. Loads the real catalog into the ``bench`` database if it is empty (``import_catalog
   --no-index``, then ``reindex``), and starts a Celery worker (with beat) for it.
2. Makes ``--edits`` edits at a steady ``--rate`` (edits per second), alternating between
   the admin (the package change form POSTed through Django's test client, logged in as a
   superuser) and the ORM (``package.save()`` in a transaction). The packages are drawn
   from a fixed pool with a fixed seed, and about a third of the edits re-edit a package
   edited shortly before (some of them while the previous edit is still in flight). Every
   edit writes a unique token into the package's summary.
3. Visibility is checked every ``--poll`` seconds from the moment the edit committed (taken
   by the first ``on_commit`` callback of the editing transaction), from threads, so
   checking never delays the next edit. Default (``--poll-mode probe``): one prober thread
   asks which pending tokens are searchable, in one request (a named ``match`` on the
   summary per pending token); the answer's arrival is the edit's visible time, and
   ``search.service.search(token)`` must then return the package too (else the edit is
   polled through the service until it does). ``--poll-mode service`` has every pending
   edit call ``search.service.search(token)`` itself every ``--poll`` seconds: with ~5-10
   edits in flight that is hundreds of full searches a second, which on a 2-core machine
   slows the indexing being measured (it roughly doubles p95 there). An edit that a later
   edit of the same package overwrote before it was indexed counts as visible when that
   later edit is (``superseded``); one not visible within ``--timeout`` seconds is lost.
4. Restores the original summaries, waits for the outbox to drain and stops the worker.

Results: ``bench/results/freshness.json`` and ``bench/results/freshness.md``. Targets:
p95 <= 2 s, lost 0. Environment: see ``bench.common.BENCH_ENV`` (never the dev/test data).
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import common

P95_TARGET_S = 2.0
SUMMARY_ROOM = 480  # the summary is 500 characters at most: room for " zqx" + 10 hex


@dataclass
class Edit:
    seq: int
    path: str  # "admin" or "orm"
    package_id: int
    token: str
    committed: float | None = None
    visible: float | None = None
    superseded: bool = False
    error: str | None = None
    polls: int = 0
    search_errors: int = 0
    confirmed: bool = False  # search.service.search(token) returned the package

    @property
    def latency(self) -> float | None:
        if self.committed is None or self.visible is None:
            return None
        return self.visible - self.committed


@dataclass
class Tracker:
    """What the pollers have seen, shared between threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # package id -> [(edit seq, time the edit was seen in search)]
    seen: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    # package id -> seqs of the edits committed so far
    committed: dict[int, list[int]] = field(default_factory=dict)

    def commit(self, edit: Edit) -> None:
        with self.lock:
            self.committed.setdefault(edit.package_id, []).append(edit.seq)

    def newer_committed(self, edit: Edit) -> bool:
        with self.lock:
            return any(seq > edit.seq for seq in self.committed.get(edit.package_id, []))

    def saw(self, edit: Edit, when: float) -> None:
        with self.lock:
            self.seen.setdefault(edit.package_id, []).append((edit.seq, when))

    def newer_seen(self, edit: Edit) -> float | None:
        """When a later edit of the same package was seen (the index then holds a version
        at least as new as this edit's), or None."""
        with self.lock:
            times = [t for seq, t in self.seen.get(edit.package_id, []) if seq > edit.seq]
        return min(times) if times else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.freshness",
        description=(
            "Measure edit-to-search latency through the admin and the ORM, with a real "
            "Celery worker, in the isolated 'bench' database and index prefix."
        ),
    )
    parser.add_argument("--edits", type=int, default=240, help="edits to make (default 240)")
    parser.add_argument("--rate", type=float, default=5.0, help="edits per second (default 5)")
    parser.add_argument(
        "--poll", type=float, default=0.02, help="seconds between searches (default 0.02)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before an edit counts as lost"
    )
    parser.add_argument(
        "--pool", type=int, default=80, help="distinct packages edited (default 80)"
    )
    parser.add_argument(
        "--repeat", type=float, default=0.35, help="share of edits re-editing a recent package"
    )
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default 1234)")
    parser.add_argument(
        "--poll-mode",
        choices=["probe", "service"],
        default="probe",
        help=(
            "probe (default): one prober thread asks, every --poll seconds, which pending "
            "tokens are searchable (one request with a named match per token); each hit is "
            "then confirmed with search.service.search(token) in the poller pool. "
            "service: every pending edit polls search.service.search(token) itself every "
            "--poll seconds (about one search per pending edit per poll, which competes "
            "with indexing on a small machine); results go to freshness-service-poll.*"
        ),
    )
    parser.add_argument("--pollers", type=int, default=32, help="poller threads (default 32)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="Celery worker processes (default 4)"
    )
    parser.add_argument(
        "--output",
        help="results file name in bench/results, without extension (default: freshness, "
        "plus the poll mode and worker concurrency when they differ from the defaults)",
    )
    args = parser.parse_args(argv)
    if args.edits < 2 or args.rate <= 0 or args.poll <= 0 or args.timeout <= 0:
        parser.error("--edits must be >= 2 and --rate, --poll, --timeout positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.setup_django()
    from django.conf import settings

    if "testserver" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

    catalog = common.ensure_catalog()
    common.say(f"catalog: {catalog['rows']} packages")
    worker = common.Worker(common.RESULTS / "freshness-worker.log", concurrency=args.concurrency)
    common.say("starting the Celery worker ...")
    worker.start()
    try:
        common.say("waiting for the outbox to drain ...")
        if not common.wait_until(lambda: common.outbox_backlog() == 0, timeout=300):
            raise SystemExit("the outbox did not drain within 300s; see the worker log")
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        before = common.machine()
        edits, wall, probe_stats = run_edits(args)
    finally:
        try:
            restore_summaries()
            common.wait_until(lambda: common.outbox_backlog() == 0, timeout=120)
        finally:
            worker.stop()
    result = summarise(args, edits, wall)
    result["settings"].update(probe_stats)
    result["started_at"] = started_at
    result["settings"]["output"] = args.output
    result["machine_before"] = before
    result["machine_after"] = common.machine()
    report(result)
    return 0 if result["lost"] == 0 and not result["errors"] else 1


# --------------------------------------------------------------------------- editing

_originals: dict[int, str] = {}
TOKEN_RE = re.compile(r"\s+zqx[0-9a-f]{10}$")


def choose_packages(rng: random.Random, count: int) -> list[int]:
    """A fixed sample of packages whose admin form is small enough to POST (few
    dependencies: the form has four fields per dependency, Django accepts 1,000 fields)."""
    from django.db.models import Count

    from portal.models import Package

    ids = list(
        Package.objects.annotate(deps=Count("dependencies"))
        .filter(deps__lte=40)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return rng.sample(ids, min(count, len(ids)))


def schedule(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(path, package id) for every edit: paths alternate, a share re-edits recent ones."""
    rng = random.Random(args.seed)
    pool = choose_packages(rng, args.pool)
    plan: list[tuple[str, int]] = []
    fresh = 0
    for i in range(args.edits):
        path = "admin" if i % 2 == 0 else "orm"
        if plan and rng.random() < args.repeat:
            # Back-to-back (the previous edit is surely in flight) or a few seconds later.
            back = 1
            if len(plan) > 1 and rng.random() >= 0.4:
                back = rng.randint(2, min(len(plan), 25))
            package_id = plan[-back][1]
        else:
            package_id = pool[fresh % len(pool)]
            fresh += 1
        plan.append((path, package_id))
    return plan


def new_token() -> str:
    return "zqx" + secrets.token_hex(5)


def with_token(package: Any, token: str) -> str:
    original = _originals.setdefault(package.pk, TOKEN_RE.sub("", package.summary))
    return f"{original[:SUMMARY_ROOM]} {token}"


class CommitClock:
    """Records when each edit's transaction commits: a ``pre_save`` receiver registers an
    ``on_commit`` callback before indexing's own (registered in ``post_save``), so it runs
    first, right after COMMIT returns."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def receiver(self, sender: Any, instance: Any, **kwargs: Any) -> None:
        from django.db import connection, transaction

        match = re.search(r"zqx[0-9a-f]{10}$", instance.summary or "")
        if match and connection.in_atomic_block:
            token = match.group(0)
            transaction.on_commit(lambda: self.times.setdefault(token, time.perf_counter()))

    def connect(self) -> None:
        from django.db.models.signals import pre_save

        from portal.models import Package

        pre_save.connect(self.receiver, sender=Package, dispatch_uid="bench.commit_clock")

    def disconnect(self) -> None:
        from django.db.models.signals import pre_save

        from portal.models import Package

        pre_save.disconnect(sender=Package, dispatch_uid="bench.commit_clock")


def admin_client() -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench-editor",
        defaults={"is_staff": True, "is_superuser": True, "email": "bench@example.org"},
    )
    if not (user.is_staff and user.is_superuser):
        user.is_staff = user.is_superuser = True
        user.save()
    client = Client()
    client.force_login(user)
    return client


def edit_once(client: Any, edit: Edit) -> None:
    from django.db import transaction

    from portal.models import Package
    from tests.helpers import change_form_data

    if edit.path == "admin":
        package = Package.objects.get(pk=edit.package_id)
        summary = with_token(package, edit.token)
        response = client.post(
            f"/admin/portal/package/{package.pk}/change/",
            change_form_data(package, summary=summary),
        )
        if response.status_code != 302:
            edit.error = f"admin answered {response.status_code}"
    else:
        with transaction.atomic():
            package = Package.objects.select_for_update().get(pk=edit.package_id)
            package.summary = with_token(package, edit.token)
            package.save()


def found_by_service(edit: Edit) -> bool:
    """Whether ``search.service.search(token)`` returns the edited package."""
    from search import service

    try:
        result = service.search(edit.token)
    except Exception:
        edit.search_errors += 1
        return False
    edit.polls += 1
    return any(hit.id == edit.package_id for hit in result.hits)


def poll(edit: Edit, args: argparse.Namespace, tracker: Tracker) -> None:
    """Poll ``search.service.search(token)`` every ``--poll`` seconds until it returns the
    package, a later edit of the package is seen (superseded), or the timeout (lost)."""
    deadline = edit.committed + args.timeout
    while time.perf_counter() <= deadline:
        if found_by_service(edit):
            edit.visible = time.perf_counter()
            edit.confirmed = True
            tracker.saw(edit, edit.visible)
            return
        newer = tracker.newer_seen(edit)
        if newer is not None:
            edit.visible = max(newer, edit.committed)
            edit.superseded = edit.confirmed = True
            return
        time.sleep(args.poll)


def confirm(edit: Edit, args: argparse.Namespace, tracker: Tracker) -> None:
    """After the prober saw the token: the search service must return the package too.
    If it does not (and no later edit replaced the token meanwhile), the probe's time is
    discarded and the edit is polled through the search service like in ``service`` mode."""
    if found_by_service(edit):
        edit.confirmed = True
        return
    if tracker.newer_committed(edit):
        edit.confirmed = True  # the token was legitimately replaced by a later edit
        return
    edit.visible = None
    poll(edit, args, tracker)
    edit.confirmed = edit.visible is not None


class Prober(threading.Thread):
    """Asks, every ``--poll`` seconds, which pending tokens are searchable, in one request:
    a named ``match`` on the summary per pending token (the field the token is in, with the
    analyzer the search service's query uses on it). A hit resolves the edit at the time
    the answer arrived; the search service then confirms it in the poller pool."""

    def __init__(self, args: argparse.Namespace, tracker: Tracker, pool: Any) -> None:
        super().__init__(name="prober", daemon=True)
        self.args = args
        self.tracker = tracker
        self.pool = pool
        self.pending: dict[str, Edit] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.futures: list[Any] = []
        self.requests = 0
        self.errors = 0

    def add(self, edit: Edit) -> None:
        with self.lock:
            self.pending[edit.token] = edit

    def run(self) -> None:
        from search.indices import client

        es = client()
        while True:
            with self.lock:
                batch = dict(self.pending)
            if not batch and self.closing.is_set():
                return
            if batch:
                self.probe(es, batch)
            time.sleep(self.args.poll)

    def probe(self, es: Any, batch: dict[str, Edit]) -> None:
        """One request for every pending token; resolve what it found, what a later edit
        superseded and what timed out."""
        from search.indices import read_alias

        should = [{"match": {"summary": {"query": token, "_name": token}}} for token in batch]
        try:
            response = es.search(
                index=read_alias(),
                query={"bool": {"should": should}},
                size=len(batch),
                source=False,
            )
            self.requests += 1
        except Exception:
            self.errors += 1
            return
        now = time.perf_counter()
        seen = self.found(response, batch, now)
        done = seen | self.settled(batch, seen, now)
        with self.lock:
            for token in done:
                self.pending.pop(token, None)

    def found(self, response: dict[str, Any], batch: dict[str, Edit], now: float) -> set[str]:
        """Tokens the answer returned on their package: visible now, then confirmed through
        the search service in the poller pool."""
        seen = set()
        for hit in response["hits"]["hits"]:
            for token in hit.get("matched_queries", []):
                edit = batch.get(token)
                if edit is not None and int(hit["_id"]) == edit.package_id:
                    seen.add(token)
                    edit.visible = now
                    self.tracker.saw(edit, now)
                    self.futures.append(self.pool.submit(confirm, edit, self.args, self.tracker))
        return seen

    def settled(self, batch: dict[str, Edit], seen: set[str], now: float) -> set[str]:
        """Tokens not seen that are done anyway: superseded by a later edit that was seen,
        or lost (past the timeout)."""
        done = set()
        for token, edit in batch.items():
            if token in seen:
                continue
            newer = self.tracker.newer_seen(edit)
            if newer is not None:
                edit.visible = max(newer, edit.committed)
                edit.superseded = True
                edit.confirmed = True
                done.add(token)
            elif now > edit.committed + self.args.timeout:
                done.add(token)  # lost
        return done


def make_edit(client: Any, clock: CommitClock, tracker: Tracker, edit: Edit) -> bool:
    """Make one edit and take its commit time; False when it failed (``edit.error``)."""
    try:
        edit_once(client, edit)
    except Exception as exc:
        edit.error = f"{type(exc).__name__}: {exc}"
    if edit.error:
        return False
    edit.committed = clock.times.get(edit.token)
    if edit.committed is None:
        edit.error = "no commit observed"
        return False
    tracker.commit(edit)
    return True


def warm_up(client: Any, plan: list[tuple[str, int]]) -> None:
    """One untimed edit per path (first request, first task, connections)."""
    for edit in (
        Edit(-2, "admin", plan[0][1], new_token()),
        Edit(-1, "orm", plan[1][1], new_token()),
    ):
        edit_once(client, edit)
    time.sleep(3)


def run_edits(args: argparse.Namespace) -> tuple[list[Edit], float, dict[str, int]]:
    plan = schedule(args)
    client = admin_client()
    clock = CommitClock()
    clock.connect()
    tracker = Tracker()
    warm_up(client, plan)
    edits = [Edit(i, path, pk, new_token()) for i, (path, pk) in enumerate(plan)]
    common.say(f"{len(edits)} edits at {args.rate}/s, polling mode {args.poll_mode} ...")
    interval = 1.0 / args.rate
    pool = ThreadPoolExecutor(max_workers=args.pollers, thread_name_prefix="poll")
    prober = Prober(args, tracker, pool) if args.poll_mode == "probe" else None
    if prober:
        prober.start()
    futures = []
    start = time.perf_counter()
    try:
        for edit in edits:
            delay = start + edit.seq * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if not make_edit(client, clock, tracker, edit):
                continue
            if prober:
                prober.add(edit)
            else:
                futures.append(pool.submit(poll, edit, args, tracker))
            if (edit.seq + 1) % 50 == 0:
                common.say(f"  {edit.seq + 1} edits made")
        edit_seconds = time.perf_counter() - start
        if prober:
            prober.closing.set()
            prober.join()
            futures += prober.futures
        for future in futures:
            future.result()
    finally:
        if prober:
            prober.closing.set()
        pool.shutdown(wait=True)
        clock.disconnect()
    probe_stats = {
        "probe_requests": prober.requests if prober else 0,
        "probe_errors": prober.errors if prober else 0,
    }
    return edits, edit_seconds, probe_stats


def restore_summaries() -> None:
    """Put the original summaries back (through the ORM, so indexing follows)."""
    from django.db import transaction

    from portal.models import Package

    if not _originals:
        return
    with transaction.atomic():
        for package in Package.objects.select_for_update().filter(pk__in=list(_originals)):
            package.summary = _originals[package.pk]
            package.save(update_fields=["summary", "updated_at"])


# --------------------------------------------------------------------------- reporting


def stats(edits: list[Edit]) -> dict[str, Any]:
    made = [e for e in edits if e.error is None]
    latencies = [e.latency for e in made if e.latency is not None]
    return {
        "edits": len(made),
        "lost": sum(1 for e in made if e.visible is None),
        "p50_s": _round(common.percentile(latencies, 50)),
        "p95_s": _round(common.percentile(latencies, 95)),
        "max_s": _round(max(latencies) if latencies else None),
        "superseded": sum(1 for e in made if e.superseded),
        "unconfirmed": sum(1 for e in made if e.visible is not None and not e.confirmed),
        "errors": len(edits) - len(made),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summarise(args: argparse.Namespace, edits: list[Edit], wall: float) -> dict[str, Any]:
    overall = stats(edits)
    result: dict[str, Any] = {
        "edits": overall["edits"],
        "lost": overall["lost"],
        "p50_s": overall["p50_s"],
        "p95_s": overall["p95_s"],
        "max_s": overall["max_s"],
        "superseded": overall["superseded"],
        "unconfirmed": overall["unconfirmed"],
        "errors": overall["errors"],
        "by_path": {path: stats([e for e in edits if e.path == path]) for path in ("admin", "orm")},
        "target": {"p95_s": P95_TARGET_S, "lost": 0},
        "met": overall["lost"] == 0
        and overall["p95_s"] is not None
        and overall["p95_s"] <= P95_TARGET_S,
        "settings": {
            "rate_per_s": args.rate,
            "achieved_rate_per_s": round(len(edits) / wall, 2) if wall else None,
            "poll_mode": args.poll_mode,
            "poll_s": args.poll,
            "timeout_s": args.timeout,
            "packages": len({e.package_id for e in edits}),
            "repeat_share": args.repeat,
            "seed": args.seed,
            "worker_concurrency": args.concurrency,
            "warmup_edits_excluded": 2,
            "percentiles": "nearest rank over edits that became visible",
        },
        "error_samples": sorted({e.error for e in edits if e.error})[:5],
        "search_errors": sum(e.search_errors for e in edits),
    }
    return result


def report(result: dict[str, Any]) -> None:
    rows = [("all", result)] + [(p, s) for p, s in result["by_path"].items()]
    table = common.markdown_table(
        ["path", "edits", "lost", "p50 s", "p95 s", "max s", "superseded", "unconfirmed", "errors"],
        [
            (
                name,
                s["edits"],
                s["lost"],
                s["p50_s"],
                s["p95_s"],
                s["max_s"],
                s["superseded"],
                s["unconfirmed"],
                s["errors"],
            )
            for name, s in rows
        ],
    )
    settings = result["settings"]
    verdict = "met" if result["met"] else "NOT met"
    # The default configuration writes freshness.*; variants get their own files.
    base = "freshness"
    if settings["poll_mode"] != "probe":
        base += "-service-poll"
    if settings["worker_concurrency"] != 4:
        base += f"-concurrency{settings['worker_concurrency']}"
    base = settings.pop("output") or base
    how = (
        "a prober asking every poll which pending tokens are searchable (one request, a "
        "named match per token), each hit confirmed by search.service.search(token)"
        if settings["poll_mode"] == "probe"
        else "search.service.search(token) polled by every pending edit"
    )
    text = (
        "# Freshness: edit committed -> findable in search\n\n"
        f"Run {result['started_at']}; {settings['achieved_rate_per_s']} edits/s over "
        f"{settings['packages']} packages (admin and ORM alternating, "
        f"{int(settings['repeat_share'] * 100)}% re-edits); visibility checked every "
        f"{settings['poll_s']}s by {how}; lost after {settings['timeout_s']}s; Celery worker "
        f"with {settings['worker_concurrency']} processes.\n\n"
        f"{table}\n\n"
        f"Target p95 <= {P95_TARGET_S}s and 0 lost: **{verdict}**. "
        "Latency runs from the edit's COMMIT to the first search that returns the package; "
        "a superseded edit (overwritten by a later edit of the same package before it was "
        "indexed) counts as visible when the later one is. Machine before/after: "
        f"{result['machine_before']} / {result['machine_after']}.\n"
    )
    json_path = common.write_json(f"{base}.json", result)
    md_path = common.write_text(f"{base}.md", text)
    print(table)
    print(f"target p95 <= {P95_TARGET_S}s, lost 0: {verdict}")
    print(f"results: {json_path}, {md_path}")


if __name__ == "__main__":
    raise SystemExit(main())
