"""Dedup benchmarks: quality on real web pages, and the whole stage's cost on synthetic corpora.

    .venv/bin/python bench/bench_dedup.py quality [--bases 300]
    .venv/bin/python bench/bench_dedup.py speed [--sizes 10000,30000] [--workers 2]

quality: texts of the real pages in ../shared/data/realweb/realweb.warc.gz (trafilatura), plus
controlled edits of some of them (known pairs: scattered word substitutions, replaced spans,
deleted lines).  True Jaccard of every pair by brute force (sparse matrix product over 5-gram
shingle sets), then (1) LSH candidate rate per true-Jaccard bin vs the theoretical S-curve
1-(1-s^r)^b, and (2) precision/recall of the stage's decisions ("same cluster") against
"true Jaccard >= threshold", pairwise.
speed: the whole dedup stage (URL + MinHash + lines) on synthetic corpora with planted exact and
near duplicates and shared boilerplate lines: wall time and peak RSS of each SDK worker process.
Prints figures only.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from filters.dedup.text import normalize_text, shingle_hashes  # noqa: E402
from filters.dedup.minhash import MinHasher, band_keys, candidate_probability  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "corpus-bench-realweb-texts.json"


def shared_data_dir() -> Path:
    return Path(os.environ.get("CORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))


def realweb_texts(min_words: int = 80) -> list[dict]:
    """[{url, text}] of the realweb pages, extracted once with trafilatura and cached in /tmp."""
    if CACHE.exists():
        return json.loads(CACHE.read_text())
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    path = shared_data_dir() / "realweb" / "realweb.warc.gz"
    if not path.exists():
        raise SystemExit(f"realweb WARC not found at {path} (set CORPUS_SHARED_DATA)")
    out = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "response":
                continue
            url = rec.rec_headers.get_header("WARC-Target-URI")
            html = rec.content_stream().read()
            text = trafilatura.extract(html, url=url, include_comments=False) or ""
            if len(text.split()) >= min_words:
                out.append({"url": url, "text": text})
    CACHE.write_text(json.dumps(out))
    return out


# ------------------------------------------------------------------------------------------
# quality


def _edit(rng, words, kind, amount, vocab):
    w = list(words)
    if kind == "scatter":  # substitute a fraction of words at random positions
        for i in rng.sample(range(len(w)), int(len(w) * amount)):
            w[i] = rng.choice(vocab)
    elif kind == "span":  # replace one contiguous span
        n = int(len(w) * amount)
        s = rng.randrange(0, len(w) - n + 1)
        w[s:s + n] = [rng.choice(vocab) for _ in range(n)]
    elif kind == "truncate":  # keep a prefix
        w = w[: max(5, int(len(w) * (1 - amount)))]
    return " ".join(w)


EDITS = [("scatter", 0.01), ("scatter", 0.02), ("scatter", 0.05), ("scatter", 0.10), ("scatter", 0.15),
         ("span", 0.05), ("span", 0.10), ("span", 0.15), ("span", 0.30), ("span", 0.50),
         ("truncate", 0.10), ("truncate", 0.30), ("truncate", 0.60)]


def build_quality_corpus(bases: int, seed: int = 0):
    pages = realweb_texts()
    rng = random.Random(seed)
    vocab = sorted({w for p in pages[:200] for w in p["text"].split()})
    docs = [{"doc_id": f"web{i:04d}", "url": p["url"], "text": p["text"]} for i, p in enumerate(pages)]
    chosen = rng.sample(range(len(pages)), min(bases, len(pages)))
    for b in chosen:
        words = pages[b]["text"].split()
        kind, amount = EDITS[rng.randrange(len(EDITS))]
        docs.append({"doc_id": f"var{b:04d}-{kind}-{int(amount * 100):02d}", "url": pages[b]["url"] + f"?v={kind}{amount}",
                     "text": _edit(rng, words, kind, amount, vocab)})
    return docs


def true_jaccard_pairs(docs, min_j: float = 0.0):
    """{(i, j): J} for every pair with J > min_j, by a sparse product of shingle incidence."""
    from scipy import sparse

    sets = [np.unique(shingle_hashes(normalize_text(d["text"]))) for d in docs]
    vocab = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for h in s.tolist():
            cols.append(vocab.setdefault(h, len(vocab)))
            rows.append(i)
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(docs), len(vocab)))
    inter = (x @ x.T).tocoo()
    sizes = np.array([s.size for s in sets])
    out = {}
    for i, j, c in zip(inter.row, inter.col, inter.data):
        if i < j:
            jac = c / (sizes[i] + sizes[j] - c)
            if jac > min_j:
                out[(i, j)] = jac
    return out, sets


def quality(args) -> None:
    t0 = time.time()
    docs = build_quality_corpus(args.bases)
    print(f"corpus: {len(docs)} documents ({sum(d['doc_id'].startswith('web') for d in docs)} real pages + "
          f"{sum(d['doc_id'].startswith('var') for d in docs)} edited copies); built in {time.time() - t0:.0f}s")
    pairs, sets = true_jaccard_pairs(docs)
    n = len(docs)
    print(f"true Jaccard by brute force: {n * (n - 1) // 2} pairs, {len(pairs)} with any shared shingle")

    # (1) S-curve: fraction of pairs sharing >= 1 band, per true-Jaccard bin.
    bands, rows = args.bands, args.rows
    hasher = MinHasher(bands * rows, 1)
    sigs = hasher.signatures([shingle_hashes(normalize_text(d["text"])) for d in docs])
    keys = [set(band_keys(s, bands, rows)) if s is not None else set() for s in sigs]
    bins = np.linspace(0, 1, 11)
    print(f"\nS-curve, {bands} bands x {rows} rows: P(candidate) by true Jaccard (pairs with J>0)")
    print("  J bin        pairs   measured  theory(mean J of bin)")
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = [(p, j) for p, j in pairs.items() if lo <= j < hi or (hi == 1.0 and j == 1.0)]
        if not sel:
            continue
        hit = sum(bool(keys[a] & keys[b]) for (a, b), _ in sel)
        theory = float(np.mean([candidate_probability(j, bands, rows) for _, j in sel]))
        print(f"  [{lo:.1f},{hi:.1f})  {len(sel):9d}   {hit / len(sel):7.3f}   {theory:7.3f}")

    # (2) the stage's decisions.
    import pipelines.dedup as dedup

    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in"
        inp.mkdir()
        pq.write_table(pa.Table.from_pylist(docs), inp / "docs.parquet")
        for verify in args.verify.split(","):
            cfg = Path(tmp) / f"cfg-{verify}.yaml"
            cfg.write_text("dedup:\n  url:\n    enabled: false\n  lines:\n    enabled: false\n"
                           f"  minhash:\n    bands: {bands}\n    rows: {rows}\n    verify: {verify}\n"
                           f"    verify_threshold: {args.verify_threshold}\n")
            out = Path(tmp) / f"out-{verify}"
            t1 = time.time()
            with open(os.devnull, "w") as devnull:
                stdout, sys.stdout = sys.stdout, devnull
                try:
                    dedup.run(argparse.Namespace(input=str(inp), output=str(out), config=str(cfg), shards=2), [],
                              workers=args.workers)
                finally:
                    sys.stdout = stdout
            cluster = {}
            for f in out.glob("part-*.parquet"):
                for r in pq.read_table(f, columns=["doc_id", "dup_cluster_id"]).to_pylist():
                    cluster[r["doc_id"]] = r["dup_cluster_id"]
            for f in (out / "removed").glob("part-*.parquet"):
                for r in pq.read_table(f, columns=["doc_id", "dup_kept_doc_id"]).to_pylist():
                    cluster[r["doc_id"]] = r["dup_kept_doc_id"]
            ids = [d["doc_id"] for d in docs]
            members = {}
            for i, d in enumerate(ids):
                members.setdefault(cluster[d], []).append(i)
            same = {(min(a, b), max(a, b)) for m in members.values() if len(m) > 1
                    for ai, a in enumerate(m) for b in m[ai + 1:]}
            removed = sum(1 for d in ids if cluster[d] != d)
            print(f"\nstage decisions, verify={verify} (threshold {args.verify_threshold}), "
                  f"{time.time() - t1:.0f}s: {removed} documents removed, {len(same)} same-cluster pairs")
            print("  truth = true J >= t   precision  recall   TP     FP     FN")
            for t in args.thresholds:
                truth = {p for p, j in pairs.items() if j >= t}
                tp = len(same & truth)
                fp, fn = len(same - truth), len(truth - same)
                prec = tp / len(same) if same else 1.0
                rec = tp / len(truth) if truth else 1.0
                print(f"  t = {t:.2f}              {prec:8.3f}  {rec:6.3f}  {tp:5d}  {fp:5d}  {fn:5d}")
            # Recall per edit kind (known pairs).
            by_kind = {}
            index = {d: i for i, d in enumerate(ids)}
            for d in ids:
                if d.startswith("var"):
                    kind = d.split("-", 1)[1]
                    base = index["web" + d[3:7]]
                    pair = (min(base, index[d]), max(base, index[d]))
                    by_kind.setdefault(kind, []).append((pair in same, pairs.get(pair, 0.0)))
            print("  known pairs by edit: kind  n  merged  mean true J")
            for kind in sorted(by_kind, key=lambda k: (k.split("-")[0], int(k.split("-")[1]))):
                v = by_kind[kind]
                print(f"    {kind:12s} {len(v):3d}  {sum(m for m, _ in v) / len(v):5.2f}   {np.mean([j for _, j in v]):.3f}")


# ------------------------------------------------------------------------------------------
# speed


def synthetic_corpus(n: int, seed: int = 0, words: int = 300):
    """Zipf-ish vocabulary; ~5% exact copies, ~10% near copies (3% words changed), boilerplate lines."""
    rng = np.random.default_rng(seed)
    vocab = np.array(["".join(chr(97 + c) for c in rng.integers(0, 26, rng.integers(2, 10))) for _ in range(50000)])
    probs = 1.0 / np.arange(1, vocab.size + 1) ** 1.05
    probs /= probs.sum()
    boiler = [" ".join(rng.choice(vocab[:2000], 12)) for _ in range(200)]
    base = 2000
    rows, originals = [], []
    for i in range(n):
        kind = rng.random()
        if originals and kind < 0.05:
            text = originals[rng.integers(len(originals))]
        elif originals and kind < 0.15:
            ws = originals[rng.integers(len(originals))].split(" ")
            for j in rng.integers(0, len(ws), max(1, len(ws) // 33)):
                ws[j] = vocab[rng.integers(vocab.size)]
            text = " ".join(ws)
        else:
            ws = vocab[rng.choice(vocab.size, words, p=probs)]
            body = "\n".join(" ".join(ws[k:k + 25]) for k in range(0, words, 25))
            text = "\n".join([boiler[rng.integers(len(boiler))], body, boiler[rng.integers(len(boiler))]])
            originals.append(text)
            if len(originals) > 5000:
                originals.pop(0)
        rows.append({"doc_id": f"s{i:08d}", "url": f"https://site{i % 997}.example/p/{i}", "text": text,
                     "fetch_date": None})
    del base
    return rows


class RssSampler(threading.Thread):
    """Peak RSS of this process (the launcher) and of every child (the SDK workers), every 0.2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.me = psutil.Process()
        self.peak = {}
        self.cpu = {}
        self.launcher = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.launcher = max(self.launcher, self.me.memory_info().rss)
            for child in self.me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                    cpu = child.cpu_times()
                except Exception:
                    continue
                self.peak[child.pid] = max(self.peak.get(child.pid, 0), rss)
                self.cpu[child.pid] = cpu.user + cpu.system
            self.stop.wait(0.2)


def write_corpus(n: int, folder: Path) -> float:
    """The synthetic corpus as 8 Parquet files; returns MB of text."""
    rows = synthetic_corpus(n)
    per_file = max(1, n // 8)
    for k in range(0, n, per_file):
        pq.write_table(pa.Table.from_pylist(rows[k:k + per_file]), folder / f"part-{k:08d}.parquet")
    return sum(len(r["text"]) for r in rows) / 1e6


def speed(args) -> None:
    """One dedup run per size; the corpus is generated in a child process so that the launcher's
    peak RSS (ru_maxrss) is the dedup run's own, not the generator's."""
    import multiprocessing
    import resource

    import pipelines.dedup as dedup

    for n in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            inp = Path(tmp) / "in"
            inp.mkdir()
            t0 = time.time()
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                mb = pool.apply(write_corpus, (n, inp))
            print(f"\n{n} synthetic documents ({mb:.0f} MB of text), generated in {time.time() - t0:.0f}s; "
                  f"{args.workers} workers")
            out = Path(args.keep_output) / str(n) if args.keep_output else Path(tmp) / "out"
            sampler = RssSampler()
            sampler.start()
            t1, cpu1 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
            with open(os.devnull, "w") as devnull:
                stdout, sys.stdout = sys.stdout, devnull
                try:
                    summary = dedup.run(argparse.Namespace(input=str(inp), output=str(out), config=args.config,
                                                           shards=4, overwrite=True), [], workers=args.workers)
                finally:
                    sys.stdout = stdout
            wall = time.time() - t1
            cpu2 = resource.getrusage(resource.RUSAGE_SELF)
            sampler.stop.set()
            sampler.join()
            peaks = sorted(sampler.peak.values(), reverse=True)
            print(f"  wall {wall:.1f}s = {n / wall:.0f} docs/s; CPU launcher "
                  f"{cpu2.ru_utime + cpu2.ru_stime - cpu1.ru_utime - cpu1.ru_stime:.1f}s + workers "
                  f"{sum(sampler.cpu.values()):.1f}s (sampled every 0.2 s); kept "
                  f"{summary['documents_kept']}, removed {summary['documents_removed']}, lines removed "
                  f"{summary['lines']['lines_removed']}, largest cluster {summary['minhash']['largest_cluster']}, "
                  f"converged {summary['minhash']['cc_converged']}")
            print(f"  peak RSS per worker process (MB): {[round(p / 2**20) for p in peaks[:args.workers + 2]]}; "
                  f"launcher {sampler.launcher / 2**20:.0f} MB sampled, "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB ru_maxrss")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--bases", type=int, default=300)
    q.add_argument("--bands", type=int, default=14)
    q.add_argument("--rows", type=int, default=8)
    q.add_argument("--verify", default="estimated,none")
    q.add_argument("--verify-threshold", type=float, default=0.7)
    q.add_argument("--thresholds", type=float, nargs="+", default=[0.6, 0.7, 0.8])
    q.add_argument("--workers", type=int, default=2)
    s = sub.add_parser("speed")
    s.add_argument("--sizes", default="10000,30000")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--config", default=None, help="a dedup config file (default: the defaults)")
    s.add_argument("--keep-output", default=None, help="write each run's output to DIR/<size> (to compare runs)")
    args = ap.parse_args()
    quality(args) if args.cmd == "quality" else speed(args)


if __name__ == "__main__":
    main()
