"""What editors curate for search, and what visitors searched for.

* :class:`Promotion`: a package pinned to a query, shown first with a label.
* :class:`SynonymSet`: words that mean the same ("pdf, portable document format"); applied
  at query time, so a change takes effect within a minute and needs no reindex.
* :class:`QueryStat`: searches per normalised query and day, with how many found nothing;
  filled off the request path by a periodic task (``search.analytics``).
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from portal.models import Package


def normalise_query(text: str) -> str:
    """Lower case, punctuation (except - + . inside words) dropped, whitespace collapsed."""
    cleaned = re.sub(r"[^\w\s+.\-]", " ", text.lower())
    return " ".join(w.strip(".-+") for w in cleaned.split() if w.strip(".-+"))


def read_differently(texts: list[str]) -> str | None:
    """How searches would read the texts an editor typed, when that is not as typed (case
    and spacing aside): "“c++” as “c”"; None when every text reads as typed. A promotion
    or synonym for "c++" would act on every search for "c"."""
    typed = [" ".join(t.lower().split()) for t in texts]
    changed = [t for t in typed if normalise_query(t) != t]
    if not changed:
        return None
    return ", ".join(f"“{t}” as “{normalise_query(t)}”" for t in changed)


MAX_TERMS_LENGTH = 2000  # a synonym set's terms, all together


def _field_is_valid(instance: models.Model, name: str) -> bool:
    """Whether the field passes its own checks: a model's ``clean`` runs after them even
    when they failed, and checking the refused value again added a second, wrong message
    ("… at most 200 characters (it has 250). This query has no words …")."""
    try:
        instance._meta.get_field(name).clean(getattr(instance, name), instance)
    except ValidationError:
        return False
    return True


class Promotion(models.Model):
    query = models.CharField(
        max_length=200, db_index=True, help_text="Matched after normalisation (case, spacing)."
    )
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="promotions")
    position = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="1 is shown first."
    )
    label = models.CharField(max_length=60, default="Editor's pick")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["query", "position"]
        constraints = [
            models.UniqueConstraint(fields=["query", "package"], name="promotion_uniq"),
        ]

    def __str__(self) -> str:
        # Messages and delete pages said "'gimp' → 63437" (the admin's list selects it).
        return f"{self.query!r} → {self.package.name}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.query = normalise_query(self.query)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        # Normalised before the form checks the unique constraint, which compared the text
        # as typed and let a case variant of a pinned query through to an IntegrityError.
        if not _field_is_valid(self, "query"):  # its own error says what is wrong
            return
        if not normalise_query(self.query):
            raise ValidationError({"query": "This query has no words to match searches by."})
        differently = read_differently([self.query])
        if differently:
            raise ValidationError(
                {
                    "query": f"Searches would read {differently}, so the pin would show on "
                    "those searches: use words of letters and digits."
                }
            )
        self.query = normalise_query(self.query)

    def validate_constraints(self, exclude: object = None) -> None:
        try:
            super().validate_constraints(exclude=exclude)  # type: ignore[arg-type]
        except ValidationError as exc:
            if "__all__" in exc.message_dict:
                raise ValidationError(
                    {"query": "This package is already pinned to this query."}
                ) from None
            raise


class SynonymSet(models.Model):
    terms = models.TextField(
        help_text="Comma-separated words or phrases that mean the same, e.g. "
        "“pdf, portable document format”.",
        # A 70,000-character term saved (and every synonym list page carried it).
        validators=[MaxLengthValidator(MAX_TERMS_LENGTH)],
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "synonym set"

    def __str__(self) -> str:
        return self.terms[:80]

    def term_list(self) -> list[str]:
        return [t for t in (normalise_query(p) for p in self.terms.split(",")) if t]

    def clean(self) -> None:
        if not _field_is_valid(self, "terms"):  # its own error says what is wrong
            return
        differently = read_differently([p for p in self.terms.split(",") if p.strip()])
        if differently:
            raise ValidationError(
                {"terms": f"Searches would read {differently}: use words of letters and digits."}
            )
        if len(set(self.term_list())) < 2:
            raise ValidationError({"terms": "Give at least two different comma-separated terms."})


class QueryStat(models.Model):
    day = models.DateField()
    query = models.CharField(max_length=200)
    searches = models.PositiveIntegerField(default=0)
    zero_results = models.PositiveIntegerField(default=0)
    # Searches known to have found something: unfiltered, with hits. A filtered search's
    # total says nothing about its words; only these make a query an autocomplete
    # suggestion (``search.analytics.popular_queries``).
    found_results = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "-searches"]
        constraints = [models.UniqueConstraint(fields=["day", "query"], name="querystat_uniq")]
        indexes = [models.Index(fields=["query"], name="querystat_query_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.query!r} ×{self.searches}"


class QueryLogBatch(models.Model):
    """A batch of the search query log already counted into :class:`QueryStat`: a flush
    that died after committing its counts does not count the batch again
    (``search.analytics``). Rows older than a week are forgotten."""

    batch_id = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    KEEP_DAYS = 7

    def __str__(self) -> str:
        return self.batch_id

    @classmethod
    def forget_old(cls) -> int:
        cutoff = timezone.now() - timedelta(days=cls.KEEP_DAYS)
        return cls.objects.filter(created_at__lt=cutoff).delete()[0]
