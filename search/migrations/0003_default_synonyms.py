"""A default synonym set, shipped with the project (editors edit or disable them in the
admin; applied at query time, so no reindex).

General equivalences of the software vocabulary (abbreviations and the names people use
for the same thing), not tuned to any one query. Word forms of one word ("editor" and
"edit") are the search analyzer's job (``search.analysis.WORD_FORMS``).
"""

from typing import Any

from django.db import migrations

DEFAULT_SETS = [
    "pdf, portable document format",
    "picture, image, photo",
    "movie, video, film",
    "music, audio",
    "mail, email, e-mail",
    "im, instant messaging, instant messenger",
    "voip, internet telephony, softphone",
    "ide, integrated development environment",
    "antivirus, anti-virus, virus scanner",
    "torrent, bittorrent",
    "screenshot, screen capture, screen grab",
    "ebook, e-book",
    "ocr, optical character recognition, text recognition",
    "tts, text to speech, speech synthesis",
    "vpn, virtual private network",
    "dns, domain name system",
    "ssh, secure shell",
    "ftp, file transfer protocol",
    "postgres, postgresql",
    "k8s, kubernetes",
    "gui, graphical user interface",
    "cli, command line, command-line",
    "spreadsheet, spreadsheets",
    "word processor, text processor",
    "hard drive, hard disk",
    "backup, back up",
]


def add_defaults(apps: Any, schema_editor: Any) -> None:
    SynonymSet = apps.get_model("search", "SynonymSet")
    existing = set(SynonymSet.objects.values_list("terms", flat=True))
    SynonymSet.objects.bulk_create(
        SynonymSet(terms=terms, enabled=True) for terms in DEFAULT_SETS if terms not in existing
    )


def remove_defaults(apps: Any, schema_editor: Any) -> None:
    SynonymSet = apps.get_model("search", "SynonymSet")
    SynonymSet.objects.filter(terms__in=DEFAULT_SETS).delete()


class Migration(migrations.Migration):
    dependencies = [("search", "0002_query_log_batch")]

    operations = [migrations.RunPython(add_defaults, remove_defaults)]
