"""Held-out evaluation text for ``make ablation`` (scripts/ablation.sh), taken from the crawl itself.

    python -m trainer.ablate_data split --input EXTRACTED --pool POOL --heldout HELDOUT --lang de --every 10
    python -m trainer.ablate_data text --input REFINED_HELDOUT --out heldout-de.txt

* ``split``: documents of the extract output whose ``lang`` is ``--lang`` and whose doc_id hashes
  (BLAKE2b) to 0 modulo ``--every`` go to HELDOUT, every other document to POOL; the Parquet schema is
  kept, so POOL and HELDOUT are valid inputs for refine.  Deterministic: the same input gives the
  same split.  The variants are built from POOL only.
* ``text``: the ``text`` column of a refine output (the held-out documents after every filter and
  dedup, i.e. clean by the pipeline's own standard), sorted by doc_id, one document per paragraph
  (blank line between documents) -> one UTF-8 file.
Near-copies of held-out pages elsewhere in the crawl are not removed here: refine's
decontamination (``--benchmark NAME=FILE``) removes them from every variant, and ``trainer ablate``
refuses to run if any eval text still shares 13-grams with a variant.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def _files(input_dir: str) -> list[Path]:
    files = sorted(Path(input_dir).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{input_dir}: no *.parquet files")
    return files


def held_out(doc_id: str, every: int) -> bool:
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little") % every == 0


def split(input_dir: str, pool: str, heldout: str, lang: str, every: int) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if every < 2:
        raise ValueError("--every must be at least 2")
    n_pool = n_held = 0
    for out in (pool, heldout):
        Path(out).mkdir(parents=True, exist_ok=True)
    for f in _files(input_dir):
        table = pq.read_table(f)
        if "lang" not in table.column_names or "doc_id" not in table.column_names:
            raise ValueError(f"{f}: needs columns doc_id and lang (an extract output)")
        mask = [lg == lang and held_out(d, every) for lg, d in
                zip(table.column("lang").to_pylist(), table.column("doc_id").to_pylist())]
        keep = pa.array(mask, type=pa.bool_())
        held, rest = table.filter(keep), table.filter(pc.invert(keep))
        pq.write_table(rest, Path(pool) / f.name)
        pq.write_table(held, Path(heldout) / f.name)
        n_pool += rest.num_rows
        n_held += held.num_rows
    return n_pool, n_held


def write_text(input_dir: str, out: str) -> tuple[int, int]:
    import pyarrow.parquet as pq

    docs = []
    for f in _files(input_dir):
        t = pq.read_table(f, columns=["doc_id", "text"])
        docs += zip(t.column("doc_id").to_pylist(), t.column("text").to_pylist())
    texts = [t.strip() for _, t in sorted(docs) if t and t.strip()]
    if not texts:
        raise ValueError(f"{input_dir}: no document text (did every held-out page fail the filters?)")
    data = ("\n\n".join(texts) + "\n").encode("utf-8")
    Path(out).write_bytes(data)
    return len(texts), len(data)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.ablate_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("--input", required=True)
    s.add_argument("--pool", required=True)
    s.add_argument("--heldout", required=True)
    s.add_argument("--lang", required=True)
    s.add_argument("--every", type=int, default=10)
    t = sub.add_parser("text")
    t.add_argument("--input", required=True)
    t.add_argument("--out", required=True)
    a = p.parse_args(argv)
    try:
        message = _run_split(a) if a.cmd == "split" else _run_text(a)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(message)
    return 0


def _run_split(a) -> str:
    n_pool, n_held = split(a.input, a.pool, a.heldout, a.lang, a.every)
    return f"split: {n_held} '{a.lang}' document(s) held out -> {a.heldout}, {n_pool} -> {a.pool}"


def _run_text(a) -> str:
    n, size = write_text(a.input, a.out)
    return f"text: {n} document(s), {size:,} bytes -> {a.out}"


if __name__ == "__main__":
    sys.exit(main())
