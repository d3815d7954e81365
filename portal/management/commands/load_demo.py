"""``manage.py load_demo``: the demo catalog, its index and a local editor account."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

import indexing
from indexing.status import counts
from portal.models import Package
from search import indices

DEMO_USER = "editor"
DEMO_PASSWORD = "editor-demo-only"
# What the demo editor may do: edit the catalog, curate search (promotions, synonyms), and
# read the analytics report and the index state (the views of those admin pages).
DEMO_PERMISSIONS = {
    "portal": [
        f"{action}_{model}"
        for model in ("package", "section", "maintainer", "tag", "dependency")
        for action in ("view", "add", "change", "delete")
    ],
    "search": [
        f"{action}_{model}"
        for model in ("promotion", "synonymset")
        for action in ("view", "add", "change", "delete")
    ]
    + ["view_querystat"],
    "indexing": ["view_outboxentry"],
}


class Command(BaseCommand):
    help = (
        "Prepare the local demo: import the bundled catalog if the database has no packages, "
        "build the search index if it is missing, incomplete or of another schema, and create "
        f"a demo editor account ('{DEMO_USER}'), local use only: refused when DEBUG is off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="re-import and reindex even if present"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("load_demo creates a demo account; it only runs with DEBUG on.")
        if options["force"] or not Package.objects.exists():
            call_command("import_catalog", no_index=True, verbosity=options["verbosity"])
        live = indices.alias_state().live
        first = not live
        found = None if first else counts()
        # An index built with another schema (this checkout changed a field or an analyser)
        # is rebuilt too: what the code searches may not be in it.
        current = first or indices.schema_is_current(live)
        if options["force"] or found is None or found.documents != found.rows or not current:
            if found is None:
                self.stdout.write("No search index yet: building it.")
            elif not current:
                self.stdout.write("Index was built with another schema: rebuilding it.")
            else:
                self.stdout.write(
                    f"Index holds {found.documents} of {found.rows} packages: rebuilding it."
                )
            mark = indexing.outbox_mark()
            call_command("reindex", verbosity=options["verbosity"])
            after = indices.alias_state()
            if first and set(after.write) == {after.live}:
                # The import's changes wait in the outbox; the first rebuild, which started
                # after them, covered them all, and no older index needs them. (If the
                # worker made a first index meanwhile, the rebuild kept it as its rollback
                # target, which still needs them: they are then written as usual.)
                indexing.discard_pending(mark)
        else:
            self.stdout.write(f"Index is complete ({found.documents} documents).")
        self.demo_editor()

    def demo_editor(self) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True}
        )
        user.is_staff = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        user.user_permissions.set(demo_permissions())
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo editor (local use only): http://127.0.0.1:8000/admin/  "
                f"user '{DEMO_USER}', password '{DEMO_PASSWORD}'"
                + (" (created)" if created else "")
            )
        )


def demo_permissions() -> list[Permission]:
    """The demo editor's permissions (:data:`DEMO_PERMISSIONS`); a missing one is an error."""
    found = []
    for app, codenames in DEMO_PERMISSIONS.items():
        rows = list(Permission.objects.filter(content_type__app_label=app, codename__in=codenames))
        missing = set(codenames) - {p.codename for p in rows}
        if missing:
            raise CommandError(f"load_demo: no permission {sorted(missing)} in app {app!r}.")
        found += rows
    return found
