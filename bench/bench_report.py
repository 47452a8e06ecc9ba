"""Report time and peak memory on synthetic runs of 10k and 100k documents.

    python bench/bench_report.py [--docs 10000,100000] [--keep DIR]

Each size gets a synthetic run directory with the real schemas (``refine.kept_schema`` /
``removed_schema`` with the dedup columns, ``extract``/``refine``/``tokenize`` summaries): random
signal values, ~8 lines of text per document, a third of the documents removed by one rule or
another.  Then ``python -m pipelines report`` runs in a child process and its wall time and peak
RSS (``ru_maxrss`` of the child) are printed.  ``synthesize_run`` is also what the report's
escaping test builds its hostile run with.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LANGS = ["en", "de", "fr", "es", "pl", "ja", "zh", "it"]
WORDS = ("the of and to in is was for on that with as by at from this his which or be are an had not "
         "river town bridge market winter garden library station harbour kettle recipe review").split()
RULES = ["gopher_quality.min_words", "gopher_repetition.top_2gram", "c4.min_sentences", "fineweb.line_punct",
         "language.low_score", "toxicity_classifier.score", "consent.optout_noai"]


def _text(rng: random.Random, lines: int) -> tuple[str, list[int], list[int]]:
    out, chars, words = [], [], []
    for _ in range(lines):
        n = rng.randint(3, 25)
        line = " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."
        out.append(line)
        chars.append(len(line))
        words.append(n)
    return "\n".join(out), chars, words


def _row(i: int, rng: random.Random, hostile: str | None) -> dict:
    lines = rng.randint(3, 12)
    text, chars, words = _text(rng, lines)
    if hostile and i % 50 == 0:
        text = hostile + "\n" + text
        chars, words = [len(hostile)] + chars, [3] + words
    lang = rng.choice(LANGS)
    q_words = sum(words)
    return {
        "doc_id": f"{i:016x}", "url": f"https://site{i % 997}.example/{i}" + ("?q=" + hostile if hostile and i % 50 == 0 else ""),
        "text": text, "title": None, "text_chars": len(text), "signals_version": "synthetic", "lang": lang,
        "lang_score": rng.uniform(0.3, 1.0), "q_words": q_words, "q_mean_word_length": rng.uniform(2, 9),
        "q_symbol_word_ratio": rng.uniform(0, 0.2), "q_bullet_lines_frac": rng.uniform(0, 1),
        "q_ellipsis_lines_frac": rng.uniform(0, 0.4), "q_alpha_words_frac": rng.uniform(0.6, 1),
        "q_stop_words": rng.randint(0, 40), "q_stop_words_frac": rng.uniform(0, 0.5),
        "q_dup_lines_frac": rng.uniform(0, 0.4), "q_dup_paras_frac": rng.uniform(0, 0.4),
        "q_dup_lines_char_frac": rng.uniform(0, 0.3), "q_dup_paras_char_frac": rng.uniform(0, 0.3),
        **{f"q_top_{n}gram_frac": rng.uniform(0, 0.3) for n in (2, 3, 4)},
        **{f"q_dup_{n}gram_frac": rng.uniform(0, 0.2) for n in (5, 6, 7, 8, 9, 10)},
        "q_lorem_ipsum": False, "q_curly_bracket": rng.random() < 0.02,
        "line_chars": chars, "line_words": words, "line_flags": [rng.choice((0, 1, 1, 1)) for _ in chars],
        "line_sentences": [1] * len(chars), "tox_clf_frac": rng.uniform(0, 0.3) if lang == "en" else None,
        "pii_counts": [("email", rng.choice((0, 0, 0, 1))), ("phone", 0)], "pii_total": 0,
        "optout_noai": rng.random() < 0.01, "optout_tdm": False, "optout_noindex": False, "optout_noimageai": False,
        "c4_lines_removed": rng.randint(0, 2), "pii_redacted": [("email", 0)],
        "dup_cluster_size": rng.choice((1, 1, 1, 2, 3)), "dup_lines_removed": 0,
    }


def synthesize_run(root: Path, docs: int, *, seed: int = 0, hostile: str | None = None) -> Path:
    """A run directory with ``docs`` documents in ``refined/`` (kept and removed) plus summaries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines import dedup, refine

    rng = random.Random(seed)
    extra = list(dedup.KEPT_FIELDS) + list(dedup.REMOVED_FIELDS)
    kept_schema, removed_schema = refine.kept_schema(extra), refine.removed_schema(extra)
    out = root / "refined"
    (out / "removed").mkdir(parents=True, exist_ok=True)
    per_lang: dict[str, dict] = {}
    removed_by_rule: dict[str, int] = {}
    chunk, part = 20_000, 0
    for start in range(0, docs, chunk):
        kept, removed = [], []
        for i in range(start, min(docs, start + chunk)):
            row = _row(i, rng, hostile)
            per = per_lang.setdefault(row["lang"], {"documents": 0, "kept": 0, "removed_by": {}, "removed_by_rule": {}})
            per["documents"] += 1
            if i % 3 == 0:
                rule = RULES[(i // 3) % len(RULES)]
                reason = f"{rule} failed" + (f" {hostile}" if hostile else "")
                row.update(removed_by=rule.split(".")[0], removal_rule=rule, removal_reason=reason, failed_filters=[rule])
                removed.append(row)
                removed_by_rule[rule] = removed_by_rule.get(rule, 0) + 1
                per["removed_by_rule"][rule] = per["removed_by_rule"].get(rule, 0) + 1
                group = rule.split(".")[0]
                per["removed_by"][group] = per["removed_by"].get(group, 0) + 1
            else:
                per["kept"] += 1
                kept.append(row)
        for rows, schema, name in ((kept, kept_schema, f"part-{part:05d}.parquet"),
                                   (removed, removed_schema, f"removed/part-{part:05d}.parquet")):
            cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
            pq.write_table(pa.Table.from_pydict(cols, schema=schema), out / name, compression="zstd")
        part += 1
    kept_n = sum(p["kept"] for p in per_lang.values())
    removed_by: dict[str, int] = {}
    for rule, n in removed_by_rule.items():
        removed_by[rule.split(".")[0]] = removed_by.get(rule.split(".")[0], 0) + n
    summary = {"stage": "refine", "documents_in": docs, "documents_filtered": docs, "kept": kept_n,
               "removed": docs - kept_n, "removed_by": removed_by, "removed_by_rule": removed_by_rule,
               "would_fail": removed_by_rule, "rejected": 0, "rejected_by_reason": {}, "per_language": per_lang,
               "pii_redacted": {"email": 3}, "signals_version": "synthetic", "config_sha256": None,
               "toxicity_audit": {}, "input": "synthetic"}
    if hostile:
        summary["rejected_by_reason"] = {"<script>alert(3)</script>": 1}   # a hostile key in a summary
        summary["toxicity_audit"] = {"en": {"removed": 1, "by_filter": {"toxicity_classifier": 1}, "examples": [
            {"doc_id": "x", "filter": "toxicity_classifier", "reason": hostile, "url": hostile,
             "lines": [hostile, "write to jane.doe@example.com now"]}]}}
    (out / "summary.json").write_text(json.dumps(summary))
    ext = root / "extracted"
    ext.mkdir(exist_ok=True)
    (ext / "summary.json").write_text(json.dumps({
        "stage": "extract", "records_read": docs * 3 + 10, "kept": docs, "dropped": docs * 2 + 10,
        "dropped_by_reason": {"record_type:request": docs, "record_type:metadata": docs, "not_html": 10},
        "dead_lettered": 0, "dead_lettered_by_reason": {}, "input": "synthetic", "input_files": 1}))
    shards = root / "shards"
    shards.mkdir(exist_ok=True)
    (shards / "summary.json").write_text(json.dumps({
        "stage": "tokenize", "documents_read": kept_n, "splits": {
            "train": {"documents": kept_n - kept_n // 10, "tokens": kept_n * 90, "shards": 1},
            "val": {"documents": kept_n // 10, "tokens": kept_n * 10, "shards": 1}},
        "tokenizer": {"vocab_size": 32000, "source": "synthetic"}}))
    return root


def measure(run: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of ``python -m pipelines report`` on ``run`` in a child process."""
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-m", "pipelines", "report", "--run", str(run)], cwd=REPO,
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"report failed: {proc.stderr.strip()[-500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", default="10000,100000", help="comma list of run sizes")
    parser.add_argument("--keep", default=None, help="build the runs here instead of a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        base = Path(args.keep or tmp)
        for n in [int(x) for x in args.docs.split(",")]:
            run = base / f"run-{n}"
            t0 = time.monotonic()
            synthesize_run(run, n)
            made = time.monotonic() - t0
            seconds, rss = measure(run)
            size = sum(f.stat().st_size for f in run.rglob("*.parquet")) / 2**20
            print(f"{n:>8,} documents ({size:.0f} MiB Parquet, built in {made:.0f}s): report {seconds:.1f}s, "
                  f"peak RSS {rss:.0f} MiB, {os.path.getsize(run / 'report.html') / 1024:.0f} KiB HTML")


if __name__ == "__main__":
    main()
