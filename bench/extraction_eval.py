"""Snippet-based boilerplate-removal scoring against realweb-eval.json.

For each evaluated URL, "with" snippets must appear in the extracted text (true positive when
found, false negative when missing) and "without" snippets must not (false positive when found).
A page the pipeline dropped counts all its "with" snippets as misses.  This is the scoring used
by trafilatura's own evaluation, so figures are comparable to trafilatura run directly.
"""
from __future__ import annotations

import json
from typing import Mapping


def _norm(text: str) -> str:
    return " ".join(text.split())


def url_key(url: str) -> str:
    """WARC readers strip stray whitespace and escape inner spaces in target URIs; so do we."""
    return url.strip().replace(" ", "%20")


def score(texts_by_url: Mapping[str, str], eval_path: str) -> dict:
    with open(eval_path, encoding="utf-8") as fh:
        truth = json.load(fh)
    texts = {url_key(u): t for u, t in texts_by_url.items()}
    tp = fn = fp = tn = missing = 0
    for url, spec in truth.items():
        text = texts.get(url_key(url))
        if text is None:
            missing += 1
            text = ""
        body = _norm(text)
        for snippet in spec.get("with", []):
            if _norm(snippet) in body:
                tp += 1
            else:
                fn += 1
        for snippet in spec.get("without", []):
            if _norm(snippet) in body:
                fp += 1
            else:
                tn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pages": len(truth), "pages_missing": missing, "tp": tp, "fn": fn, "fp": fp, "tn": tn,
            "precision": precision, "recall": recall, "f1": f1}
