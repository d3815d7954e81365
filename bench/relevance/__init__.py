"""Relevance: a judged query set (``dev.jsonl``, ``test.jsonl``), its validator, metrics and
the evaluator (``python -m bench.relevance``)."""
