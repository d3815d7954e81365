"""The catalog's domain model. PostgreSQL is the source of truth; nothing here knows about
Elasticsearch (the ``indexing`` app's database triggers capture every change).

Every write to a package bumps its ``row_version`` from one global sequence, in a database
trigger (see migration 0002), so versions are monotonic across all writers, including
``QuerySet.update()`` and raw SQL. Indexing uses it as the document's external version, so an
older write never overwrites a newer one.
"""

from __future__ import annotations

import re

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from portal.links import package_url
from portal.validators import TAG_SEPARATOR, validate_filterable, validate_tag_facet

# Debian homepages include ftp:// and gopher:// URLs.
HOMEPAGE_VALIDATOR = URLValidator(schemes=["http", "https", "ftp", "ftps", "gopher"])
# Limits no real package is near, for the admin's forms and the importer alike.
MAX_INSTALLED_SIZE_KB = 200 * 1024 * 1024  # 200 GB installed
MAX_DOWNLOAD_SIZE_BYTES = 50 * 1024**3  # 50 GB .deb
MAX_DESCRIPTION = 1_000_000


class Priority(models.TextChoices):
    REQUIRED = "required", "required"
    IMPORTANT = "important", "important"
    STANDARD = "standard", "standard"
    OPTIONAL = "optional", "optional"
    EXTRA = "extra", "extra"


class Architecture(models.TextChoices):
    AMD64 = "amd64", "amd64"
    ALL = "all", "all"


class Section(models.Model):
    """An archive section (``libs``, ``python``, ``web`` ...)."""

    name = models.CharField(max_length=64, unique=True, validators=[validate_filterable])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Maintainer(models.Model):
    """A person or team maintaining packages."""

    name = models.CharField(max_length=200, validators=[validate_filterable])
    email = models.EmailField(max_length=254)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name", "email"], name="maintainer_name_email_uniq"),
        ]
        indexes = [
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="maintainer_name_trgm_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class TagFacet(models.Model):
    """A debtags facet (``use``, ``works-with`` ...) with its human label, from Debian's tag
    vocabulary (``portal.vocabulary``)."""

    name = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.label


class Tag(models.Model):
    """A debtag, ``facet::value`` split in two (``interface::x11``), with its human label
    from Debian's tag vocabulary ("X Window System"); search matches the label as words."""

    facet = models.CharField(max_length=64, validators=[validate_tag_facet])
    value = models.CharField(max_length=128, validators=[validate_filterable])
    label = models.CharField(max_length=200, blank=True, db_default="")
    description = models.TextField(blank=True, db_default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["facet", "value"]
        constraints = [
            models.UniqueConstraint(fields=["facet", "value"], name="tag_facet_value_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.facet}::{self.value}"

    @classmethod
    def split(cls, raw: str) -> tuple[str, str]:
        """Split ``facet::value``; raise ValueError for anything else."""
        facet, sep, value = raw.partition(TAG_SEPARATOR)
        if not sep or not facet or not value:
            raise ValueError(f"tag {raw!r} is not of the form facet::value")
        return facet, value


# A Debian package name (Debian policy 5.6.1): the importer and the admin both check it.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.\-]*$")
NAME_VALIDATOR = RegexValidator(
    NAME_RE,
    "A Debian package name: lower-case letters, digits and + - . only, "
    "starting with a letter or digit.",
)
# A Debian version (policy 5.6.12: [epoch:]upstream[-revision]); in links and shown as is.
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~:-]*$")
VERSION_VALIDATOR = RegexValidator(
    VERSION_RE,
    "A Debian version: letters, digits and . + ~ : - only, starting with a letter or digit "
    "(e.g. 1:2.3~rc1-1).",
)


class Package(models.Model):
    """A Debian binary package."""

    name = models.CharField(
        max_length=200,
        unique=True,
        validators=[NAME_VALIDATOR],
    )
    version = models.CharField(max_length=200, validators=[VERSION_VALIDATOR])
    # The source package's name (links to the tracker and the sources are built from it).
    source = models.CharField(max_length=200, blank=True, validators=[NAME_VALIDATOR])
    summary = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True, validators=[MaxLengthValidator(MAX_DESCRIPTION)])
    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="packages")
    priority = models.CharField(
        max_length=16, choices=Priority.choices, default=Priority.OPTIONAL, db_index=True
    )
    architecture = models.CharField(
        max_length=16, choices=Architecture.choices, default=Architecture.AMD64
    )
    homepage = models.CharField(max_length=500, blank=True, validators=[HOMEPAGE_VALIDATOR])
    installed_size_kb = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_INSTALLED_SIZE_KB)],
    )
    download_size_bytes = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_DOWNLOAD_SIZE_BYTES)],
    )
    maintainer = models.ForeignKey(Maintainer, on_delete=models.PROTECT, related_name="packages")
    tags = models.ManyToManyField(Tag, related_name="packages", blank=True)
    # How many packages depend on (recommend) this one: popularity signals. Maintained by
    # database triggers on every write to the dependency table (portal migration 0006).
    reverse_dependency_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    reverse_recommends_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    # How many binary packages share this one's source package (itself included): a
    # popularity signal (big applications build many). Kept by a trigger (migration 0008).
    source_family_size = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set by a database trigger from a global sequence on every INSERT and UPDATE.
    row_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(installed_size_kb__isnull=True) | Q(installed_size_kb__gte=0),
                name="package_installed_size_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(download_size_bytes__isnull=True) | Q(download_size_bytes__gte=0),
                name="package_download_size_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(priority__in=Priority.values), name="package_priority_known"
            ),
            models.CheckConstraint(
                condition=Q(architecture__in=Architecture.values),
                name="package_architecture_known",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="package_name_not_empty"),
        ]
        indexes = [
            models.Index(fields=["-reverse_dependency_count"], name="package_popularity_idx"),
            models.Index(fields=["row_version"], name="package_row_version_idx"),
            models.Index(fields=["source"], name="package_source_idx"),
            # The admin's case-insensitive substring search (UPPER(name) LIKE UPPER('%x%')).
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="package_name_trgm_idx"),
            GinIndex(
                OpClass(Upper("summary"), name="gin_trgm_ops"), name="package_summary_trgm_idx"
            ),
            models.Index(fields=["section", "name"], name="package_section_name_idx"),
            models.Index(fields=["maintainer", "name"], name="package_maintainer_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return package_url(self.name)


class DependencyKind(models.TextChoices):
    DEPENDS = "depends", "depends"
    RECOMMENDS = "recommends", "recommends"


class Dependency(models.Model):
    """``package`` depends on (or recommends) ``target_name``.

    ``target`` is the package of that name when it is in the catalog; a dependency on a
    name that is not (a virtual package, another archive area) keeps ``target`` empty and
    is linked as soon as a package of that name appears.
    """

    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="dependencies")
    kind = models.CharField(max_length=16, choices=DependencyKind.choices)
    target_name = models.CharField(max_length=200, validators=[NAME_VALIDATOR])
    target = models.ForeignKey(
        Package,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dependents",
    )

    class Meta:
        ordering = ["kind", "target_name"]
        verbose_name_plural = "dependencies"
        constraints = [
            models.UniqueConstraint(
                fields=["package", "kind", "target_name"], name="dependency_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["target", "kind"], name="dependency_target_kind_idx"),
            models.Index(fields=["target_name"], name="dependency_target_name_idx"),
        ]

    def __str__(self) -> str:
        # The package is the page this row is shown on (the admin's inline): not repeated,
        # and not fetched (one query per row).
        return f"{self.get_kind_display()} {self.target_name}"

    def clean(self) -> None:
        """A package cannot depend on itself: it saved, and counted as the package's own
        reverse dependency (popularity in search). Checked against the name the same form
        gives the package (the admin's inline sees the edited package)."""
        super().clean()
        try:
            package = self.package
        except Package.DoesNotExist:  # not attached yet: the form that attaches it checks
            return
        if self.target_name and self.target_name == package.name:
            raise ValidationError(
                {"target_name": f"A package cannot depend on itself ({package.name})."}
            )
