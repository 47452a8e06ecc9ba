"""Peak memory of encoding (and of tokenizer training on) one very large document.

    python bench/bench_tokenize_memory.py [--mb 20] [--cases encode,train] [--vocab-size 4096]

Each case runs in a fresh child process and reports its peak RSS (``ru_maxrss``), the RSS just
before the measured step (tokenizer built, document in memory) and the difference, next to the
document's size.  ``encode`` is the tokenize stage's ``EncodeFn`` on a batch holding the one
document; ``train`` is ``train_bpe`` (what ``train-tokenizer`` and ``pipelines all --tokenizer
train`` call) on that document alone.  The document is the shared WikiText-2 test text (or a seeded
word salad when ../shared is absent) repeated to ``--mb`` megabytes: ordinary prose with spaces and
newlines.  Prints figures; asserts nothing.
"""
from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # before tokenizers is imported

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def shared_dir() -> Path:
    return Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def base_text() -> str:
    wiki = shared_dir() / "text" / "wikitext-2-test.txt"
    if wiki.is_file():
        return wiki.read_text(encoding="utf-8")
    import random

    rng = random.Random(0)
    words = "the of and to in river mountain city music history science Zürich naïve 42".split()
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
                     for _ in range(20000))


def document(mb: float) -> str:
    base = base_text()
    want = int(mb * 1e6)
    reps = -(-want // len(base.encode("utf-8")))
    return (base + "\n") * reps


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(case: str, mb: float, vocab: int) -> dict:
    from tokenization.tokenizer import tokenizer_json, train_bpe

    base = base_text()
    tok = train_bpe([base[:300_000]], vocab)
    if case == "encode":
        from pipelines.tokenize import EncodeFn  # Beam and the tokenizer loaded before measuring

        fn = EncodeFn(tokenizer_json(tok), vocab, False)
        fn.setup()
        list(fn.process([("train", b"h" * 32, "warm", base[:1000])]))
    doc = document(mb)
    doc_bytes = len(doc.encode("utf-8"))
    before = rss_mb()
    t0 = time.perf_counter()
    if case == "encode":
        out = list(fn.process([("train", b"h" * 32, "big", doc)]))
        tokens = len(out[0][3]) // 2
    elif case == "train":
        trained = train_bpe([doc], vocab)
        tokens = trained.get_vocab_size()
    else:
        raise SystemExit(f"unknown case {case}")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": case, "doc_mb": round(doc_bytes / 1e6, 1), "rss_before_mb": round(before),
            "peak_rss_mb": round(peak), "peak_minus_before_mb": round(peak - before),
            "seconds": round(seconds, 1), "tokens_or_vocab": tokens}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=20.0, help="document size in megabytes")
    p.add_argument("--cases", default="encode,train")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.mb, a.vocab_size)))
        return
    for case in a.cases.split(","):
        r = subprocess.run([sys.executable, __file__, "--child", case, "--mb", str(a.mb),
                            "--vocab-size", str(a.vocab_size)], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{case}: failed (rc {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{case:<7} {res['doc_mb']:>6} MB document: peak RSS {res['peak_rss_mb']:>6} MB "
              f"(before the step {res['rss_before_mb']} MB, step adds {res['peak_minus_before_mb']} MB, "
              f"{res['peak_minus_before_mb'] / res['doc_mb']:.0f}x the text) in {res['seconds']}s")


if __name__ == "__main__":
    main()
