"""Tokenizer training inside a job (``pipelines all --tokenizer train``): the sample it draws and
the tokenizer it trains are the ones ``python -m tokenization train-tokenizer`` gets from the same
documents."""
from __future__ import annotations

import random
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.runner import new_pipeline
from pipelines.train_tokenizer import TrainTokenizer
from tokenization.tokenizer import train_from_parquet

WORDS = ["river", "stone", "bridge", "market", "lantern", "harbour", "orchard", "meadow", "copper",
         "violet", "thunder", "whisper", "garden", "silver", "window", "ladder", "candle", "forest"]


def write_docs(folder: Path, files: int, docs_per_file: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        rows = []
        for d in range(docs_per_file):
            # Each document leans on its own few words, so which documents are sampled changes
            # which merges the trainer learns.
            own = rng.sample(WORDS, 3)
            text = " ".join(rng.choice(own) + rng.choice(["", "s", "ing", "ed"]) for _ in range(rng.randint(20, 60)))
            rows.append({"doc_id": f"{f:02d}{d:04d}{rng.getrandbits(32):08x}", "url": f"https://e.x/{f}/{d}",
                         "text": text})
        rows.insert(3, {"doc_id": f"empty-{f}", "url": "https://e.x/empty", "text": ""})
        pq.write_table(pa.Table.from_pylist(rows), folder / f"part-{f:05d}.parquet")


def train_in_job(folder: Path, out: Path, sample_docs, vocab: int = 300, seed: int = 3) -> str:
    cfg = {"seed": seed, "train": {"vocab_size": vocab, "sample_docs": sample_docs, "min_frequency": 2}}
    paths = sorted(str(p) for p in folder.glob("*.parquet"))
    with new_pipeline(["--direct_num_workers=2"]) as p:
        _ = p | beam.Create(paths) | TrainTokenizer(cfg, str(out), str(folder))
    return out.read_text()


@pytest.mark.parametrize("sample_docs", [37, None])
def test_job_trains_the_same_tokenizer_as_the_command_line(tmp_path, sample_docs):
    docs = tmp_path / "refined"
    write_docs(docs, files=3, docs_per_file=40)
    in_job = train_in_job(docs, tmp_path / "tokenizer.json", sample_docs)
    cli = train_from_parquet(str(docs), 300, sample_docs=sample_docs, seed=3, min_frequency=2).to_str(pretty=True)
    assert in_job == cli
    if sample_docs is not None:  # the sample matters: another seed picks other documents
        other = train_from_parquet(str(docs), 300, sample_docs=sample_docs, seed=4, min_frequency=2)
        assert other.to_str(pretty=True) != in_job


def test_no_documents_is_a_clear_failure(tmp_path):
    docs = tmp_path / "refined"
    docs.mkdir()
    pq.write_table(pa.Table.from_pylist([{"doc_id": "a", "url": "u", "text": ""}]), docs / "part-00000.parquet")
    with pytest.raises(Exception, match="no documents with text"):
        train_in_job(docs, tmp_path / "tokenizer.json", 10)
    assert not (tmp_path / "tokenizer.json").exists()
