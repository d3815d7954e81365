"""What a text means, as a vector: the semantic half of the ranking.

Words alone miss what a need means ("video conferencing" is jami and linphone, whose
summaries say "voice, video and chat"). Every package gets a 256-dimension vector of its
name, summary, first sentence and debtags labels (``meaning`` in the index, computed by the
same document builder as every other field); a query of several words gets one too, and
each matching package's text score is multiplied by ``1 + MEANING_WEIGHT * cosine``
(``search.query``), so packages that mean what the query means move up among those that
match its words.

The model is WordLlama's ``l2_supercat`` (MIT), whose weights (16 MB) and tokenizer ship
inside its PyPI wheel: nothing is downloaded, ever (``disable_download``, and the Hugging Face
client is told it is offline before it is imported). It is a static embedding (token vectors,
mean-pooled), so a text embeds in about 0.05 ms on one core and the catalog in about 6 s;
loading takes about 0.3 s, once per process.

Measured with the judged queries (``bench/relevance/vectors/README.md`` and the README's
Search section): vectors alone are far worse than words (nDCG@10 0.37 against 0.64, and
useless for names and typos), so they only re-weigh what the words found, and only for
queries of several words (a single word is a name, a part of one or a typo).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy

from search.stores import Memo

MODEL = "l2_supercat"
DIMS = 256
FIELD = "meaning"
FIRST_SENTENCE_CHARS = 300
EMBED_BATCH = 64


def _load() -> Any:
    # Set before the import: huggingface_hub reads it when it is first imported.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # The tokenizer's thread pool and fork (gunicorn's and Celery's workers) do not mix.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import wordllama
    from wordllama import WordLlama

    # The loader looks for the tokenizer in ``wordllama/tokenizer/`` but the wheel ships it
    # in ``wordllama/tokenizers/``; given the package folder as its cache, it finds both the
    # weights and the tokenizer where the wheel put them, and never reaches the network.
    package_dir = Path(wordllama.__file__).resolve().parent
    return WordLlama.load(MODEL, dim=DIMS, cache_dir=package_dir, disable_download=True)


_model = Memo(_load, constant=True)


def warm() -> None:
    """Load the model now (a process that will fork: its children share it)."""
    _model.get()


def embed(texts: Sequence[str]) -> list[list[float] | None]:
    """Unit vectors of ``texts`` (rounded: four decimals are plenty for a cosine and keep
    bulk requests a third smaller); None for a text with no meaning (nothing to pool: the
    model would give 256 NaNs, which Elasticsearch refuses)."""
    if not texts:
        return []
    # The model pads every text of a batch to the longest: texts of similar length batched
    # together waste less (20,000 catalog texts: 2.85 s of CPU in batches of 256 as they
    # come, 1.67 s sorted by length in batches of 64; the vectors are the same).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with numpy.errstate(invalid="ignore"):  # an empty text: 0 / 0, found just below
        matrix = _model.get().embed([texts[i] for i in order], norm=True, batch_size=EMBED_BATCH)
    matrix = matrix.astype(numpy.float64)
    finite = numpy.isfinite(matrix).all(axis=1)
    # Rounded by numpy in float64 (k / 10,000 is the double nearest to the decimal, so its
    # JSON is short): rounding each number in Python took 8.3 of the 23 s of CPU that
    # building the catalog's 63,436 documents cost.
    rows = numpy.round(numpy.nan_to_num(matrix), 4).tolist()
    vectors: list[list[float] | None] = [None for _ in texts]
    for position, row, ok in zip(order, rows, finite.tolist(), strict=True):
        vectors[position] = row if ok else None
    return vectors


def first_sentence(text: str, limit: int = FIRST_SENTENCE_CHARS) -> str:
    """A description's first sentence (to ". " or a paragraph break), at most ``limit``."""
    head = (text or "").split("\n\n")[0].replace("\n", " ")
    match = re.search(r"(?<=[.!?])\s", head)
    return (head[: match.start()] if match else head)[:limit].strip()


def document_text(name: str, summary: str, description: str, labels: Iterable[str]) -> str:
    """The text a package's vector is computed from."""
    parts = [name, summary or "", first_sentence(description), ", ".join(dict.fromkeys(labels))]
    # A name of dots and spaces alone, with nothing else, is all the text there is.
    return ". ".join(p.rstrip(". ") for p in parts if p.rstrip(". ")) or name.strip()


def applies(words: Sequence[str]) -> bool:
    """Whether a query's meaning is used: only for several words that are not stop words
    (generic ones count: "backup tool")."""
    return len(words) > 1
