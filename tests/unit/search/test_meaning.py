"""The meaning of texts (search.meaning): WordLlama from its wheel, never the network."""

from __future__ import annotations

import math
import socket

import pytest

from search import meaning
from search.stores import Memo


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_the_model_loads_from_the_wheel_without_the_network(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HOME", str(tmp_path / "missing"))
    Memo.reset_all()
    (vector,) = meaning.embed(["video player"])
    assert len(vector) == meaning.DIMS
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-3)
    assert not (tmp_path / "missing").exists()  # no cache folder was created


def test_texts_that_mean_the_same_are_nearer():
    need, player, parser = meaning.embed(
        ["watch movies", "media player for video files and DVDs", "XML parser library"]
    )
    assert cosine(need, player) > cosine(need, parser)


def test_texts_embedded_together_keep_their_order_and_vectors():
    # Embedded in batches of similar length, returned in the order given.
    texts = ["x" * n + " video" for n in range(3 * meaning.EMBED_BATCH, 0, -7)]
    together = meaning.embed(texts)
    for text, vector in zip(texts, together, strict=True):
        alone = meaning.embed([text])[0]
        assert max(abs(a - b) for a, b in zip(alone, vector, strict=True)) <= 1e-4


def test_a_document_text_is_name_summary_first_sentence_and_labels():
    text = meaning.document_text(
        "vlc",
        "multimedia player and streamer",
        "VLC is the VideoLAN project's media player. It plays everything.\n\nMore.",
        ["Video", "Program", "Video"],
    )
    assert text == (
        "vlc. multimedia player and streamer. VLC is the VideoLAN project's media player. "
        "Video, Program"
    )
    assert meaning.first_sentence("a" * 500) == "a" * meaning.FIRST_SENTENCE_CHARS
    assert meaning.embed([]) == []


@pytest.mark.parametrize(
    ("words", "used"), [(["vlc"], False), (["video", "player"], True), ([], False)]
)
def test_only_queries_of_several_words_use_it(words, used):
    assert meaning.applies(words) is used


def test_a_package_of_dots_alone_still_has_a_text_and_a_finite_vector():
    # A name of dots and nothing else once made an empty text, whose mean-pooled vector was
    # 256 NaNs: Elasticsearch refused the document and the whole outbox batch with it.
    text = meaning.document_text("...", "", "", [])
    assert text == "..."
    (vector,) = meaning.embed([text])
    assert all(math.isfinite(x) for x in vector)


def test_a_text_that_embeds_to_nothing_has_no_vector():
    # An empty text has no meaning: no vector (the document leaves the field out), never NaN.
    empty, fine = meaning.embed(["", "video player"])
    assert empty is None
    assert fine is not None and len(fine) == meaning.DIMS
