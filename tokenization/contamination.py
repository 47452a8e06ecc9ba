"""Is an evaluation text inside a shards directory?  Decode every document of the shards with
their own tokenizer and look for the text's word n-grams (``filters.decontamination``: the same
normalisation and hashing as refine's decontamination).  Used by
``python -m tokenization contamination --shards DIR --text FILE``.

The text file is read like a benchmark (JSONL / Parquet / plain text, one passage per paragraph).
Precision settings (stop-word share, minimum matches) come from the ``decontamination`` config
section, so the report agrees with what refine would remove.  Memory: the text's index plus one
decoded document at a time.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

SPLITS = ("train", "val")


def check_shards(shards_dir: str, text_path: str, cfg: Mapping[str, Any], ngram: int | None = None,
                 splits=SPLITS, examples: int = 5) -> dict:
    """Overlap report: {"ngrams", "ngrams_shared", "documents", "documents_hit", "by_split", "examples"}."""
    from filters.decontamination import BenchmarkIndex, load_benchmark_texts
    from filters.text_units import stop_words
    from tokenization.shards import load_tokenizer, open_split

    d = dict(cfg.get("decontamination") or {})
    n = int(ngram or d.get("ngram", 13))
    frac = d.get("max_stopword_frac")
    name = os.path.basename(text_path)
    index = BenchmarkIndex.build(((name, p) for p in load_benchmark_texts(text_path)), n=n,
                                 max_stopword_frac=None if frac is None else float(frac),
                                 stop_words=stop_words(d.get("stopword_language")) if frac is not None else frozenset())
    if not len(index):
        raise ValueError(f"--text {text_path}: no passage of {n} words or more; lower --ngram")
    tok = load_tokenizer(shards_dir)
    min_matches = int(d.get("min_matches", 1))
    shared: set[int] = set()
    report = {"text": text_path, "shards": shards_dir, "ngram": n, "ngrams": len(index), "documents": 0,
              "documents_hit": 0, "by_split": {}, "examples": []}
    for split in splits:
        per = {"documents": 0, "documents_hit": 0}
        for ds in open_split(shards_dir, split, verify=False):
            for i in range(len(ds)):
                per["documents"] += 1
                text = tok.decode(ds[i].tolist(), skip_special_tokens=True)
                matches = index.find(text, min_matches)
                if not matches:
                    continue
                per["documents_hit"] += 1
                shared |= index.matched_hashes(text)
                if len(report["examples"]) < examples:
                    report["examples"].append({"document": f"{os.path.basename(ds.path_prefix)}[{i}]",
                                               "ngrams": matches[0].ngrams, "snippet": matches[0].text})
        report["by_split"][split] = per
        report["documents"] += per["documents"]
        report["documents_hit"] += per["documents_hit"]
    report["ngrams_shared"] = len(shared)
    return report


def format_report(r: Mapping[str, Any]) -> str:
    splits = ", ".join(f"{s} {p['documents']}" for s, p in r["by_split"].items())
    lines = [f"contamination: {r['text']} ({r['ngrams']} distinct {r['ngram']}-grams) vs {r['shards']} "
             f"({r['documents']} documents: {splits})"]
    if not r["documents_hit"]:
        lines.append(f"clean: no {r['ngram']}-gram of {r['text']} occurs in any document of {r['shards']}")
        return "\n".join(lines)
    hits = ", ".join(f"{s} {p['documents_hit']}" for s, p in r["by_split"].items())
    share = 100.0 * r["ngrams_shared"] / r["ngrams"]
    lines.append(f"CONTAMINATED: {r['documents_hit']} document(s) hit ({hits}); "
                 f"{r['ngrams_shared']} of {r['ngrams']} {r['ngram']}-grams shared ({share:.2f}%)")
    for ex in r["examples"]:
        lines.append(f"  {ex['document']}: {ex['ngrams']} n-gram(s): {ex['snippet']!r}")
    return "\n".join(lines)
