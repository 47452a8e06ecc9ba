"""Model-based quality: a fastText classifier of "good" versus "low-quality" text.

Train one with::

    python -m filters.quality_model train --positive good.txt [more ...] --negative junk.txt \
        [...] --out quality.bin

Inputs are ``.txt`` (one example per non-blank line; WikiText-style paragraphs), ``.jsonl``
(a ``text`` field per line) or ``.parquet`` (a ``text`` column, e.g. refine output).  A held-out
share of each class is kept aside and the accuracy on it is printed.  Training is single-threaded
with a fixed seed so the same inputs give the same model.

The pipeline applies a configured model (``quality_model.model_path``) and stores
``QualityModel.score(text)``: the probability of the positive label.  Training needs a
``fasttext`` build that can train under NumPy 2 (``fasttext-numpy2``); see docs/filters.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

POSITIVE = "__label__hq"
NEGATIVE = "__label__lq"
DEFAULT_MIN_WORDS = 5


def normalize(text: str) -> str:
    """One lower-cased line, the form fastText sees in training and scoring."""
    return " ".join(text.lower().split())


def read_examples(path: str | Path, min_words: int = DEFAULT_MIN_WORDS) -> list[str]:
    """Normalized examples from one file (see module doc for formats); short ones are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["text"])
        texts: Iterable[str] = (t for t in table.column("text").to_pylist() if t)
    elif suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            texts = [json.loads(line).get("text") or "" for line in fh if line.strip()]
    else:
        with open(path, encoding="utf-8", errors="replace") as fh:
            texts = [line for line in fh]
    out = []
    for text in texts:
        norm = normalize(text)
        if len(norm.split()) >= min_words:
            out.append(norm)
    return out


@dataclass
class TrainResult:
    accuracy: float
    n_train: int
    n_heldout: int
    heldout_positive_recall: float
    heldout_negative_recall: float

    def describe(self) -> str:
        return (f"held-out accuracy: {self.accuracy:.4f} on {self.n_heldout} examples "
                f"(recall good {self.heldout_positive_recall:.3f}, low-quality {self.heldout_negative_recall:.3f}); "
                f"trained on {self.n_train}")


def _split(examples: list[str], holdout: float, rng: random.Random) -> tuple[list[str], list[str]]:
    examples = examples[:]
    rng.shuffle(examples)
    n_test = max(1, int(round(len(examples) * holdout))) if len(examples) > 1 else 0
    return examples[n_test:], examples[:n_test]


def train(positive: Sequence[str | Path], negative: Sequence[str | Path], out: str | Path, *,
          holdout: float = 0.1, seed: int = 0, epoch: int = 10, lr: float = 0.5, word_ngrams: int = 2,
          dim: int = 64, min_count: int = 1, min_words: int = DEFAULT_MIN_WORDS) -> TrainResult:
    """Train, measure on a held-out split of each class, save the model to ``out``."""
    import fasttext

    if not 0 < holdout < 1:
        raise ValueError(f"--holdout must be between 0 and 1, got {holdout}")
    pos = [e for p in positive for e in read_examples(p, min_words)]
    neg = [e for p in negative for e in read_examples(p, min_words)]
    if len(pos) < 2 or len(neg) < 2:
        raise ValueError(f"need at least 2 examples of each class (got {len(pos)} positive, "
                         f"{len(neg)} negative with >= {min_words} words)")
    rng = random.Random(seed)
    pos_train, pos_test = _split(pos, holdout, rng)
    neg_train, neg_test = _split(neg, holdout, rng)
    rows = [f"{POSITIVE} {e}" for e in pos_train] + [f"{NEGATIVE} {e}" for e in neg_train]
    rng.shuffle(rows)
    with tempfile.TemporaryDirectory(prefix="quality-model-") as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as fh:
            fh.write("\n".join(rows) + "\n")
        # thread=1 + seed: training is reproducible (fastText's Hogwild threads are not).
        model = fasttext.train_supervised(train_file, epoch=epoch, lr=lr, wordNgrams=word_ngrams, dim=dim,
                                          minCount=min_count, loss="softmax", thread=1, seed=seed, verbose=0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(out))

    def correct(examples: list[str], label: str) -> int:
        if not examples:
            return 0
        labels, _ = model.predict(examples, k=1)
        return sum(1 for got in labels if got and got[0] == label)

    pos_ok, neg_ok = correct(pos_test, POSITIVE), correct(neg_test, NEGATIVE)
    n_test = len(pos_test) + len(neg_test)
    return TrainResult(
        accuracy=(pos_ok + neg_ok) / n_test if n_test else float("nan"),
        n_train=len(rows), n_heldout=n_test,
        heldout_positive_recall=pos_ok / len(pos_test) if pos_test else float("nan"),
        heldout_negative_recall=neg_ok / len(neg_test) if neg_test else float("nan"))


class QualityModel:
    """A trained model; ``score`` is the probability of ``positive_label`` (0..1)."""

    def __init__(self, path: str | Path, positive_label: str = POSITIVE):
        import fasttext

        if not Path(path).is_file():
            raise FileNotFoundError(f"quality model not found: {path} (quality_model.model_path)")
        self.path = str(path)
        self.positive_label = positive_label
        self._model = fasttext.load_model(self.path)
        if positive_label not in self._model.get_labels():
            raise ValueError(f"quality model {path} has no label {positive_label!r} "
                             f"(labels: {', '.join(self._model.get_labels())})")

    def score(self, text: str) -> float:
        norm = normalize(text or "")
        if not norm:
            return 0.0
        labels, probs = self._model.predict(norm, k=-1)
        for label, prob in zip(labels, probs):
            if label == self.positive_label:
                return min(1.0, max(0.0, float(prob)))
        return 0.0

    def scores(self, texts: Sequence[str]) -> list[float]:
        return [self.score(t) for t in texts]


def score(text: str, model_path: str | Path, positive_label: str = POSITIVE) -> float:
    """Score one text with the model at ``model_path`` (loads it each call: use QualityModel in loops)."""
    return QualityModel(model_path, positive_label).score(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filters.quality_model",
                                     description="Train or apply the fastText quality classifier.")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a model and print its held-out accuracy")
    tr.add_argument("--positive", nargs="+", required=True, help="files of good text (.txt/.jsonl/.parquet)")
    tr.add_argument("--negative", nargs="+", required=True, help="files of low-quality text")
    tr.add_argument("--out", required=True, help="where to write the model (.bin)")
    tr.add_argument("--holdout", type=float, default=0.1, help="share of each class held out (default 0.1)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--epoch", type=int, default=10)
    tr.add_argument("--lr", type=float, default=0.5)
    tr.add_argument("--word-ngrams", type=int, default=2)
    tr.add_argument("--min-words", type=int, default=DEFAULT_MIN_WORDS,
                    help="skip examples with fewer words (default %(default)s)")
    sc = sub.add_parser("score", help="print the score of each line of a text file")
    sc.add_argument("--model", required=True)
    sc.add_argument("file")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            result = train(args.positive, args.negative, args.out, holdout=args.holdout, seed=args.seed,
                           epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams, min_words=args.min_words)
            print(result.describe())
            print(f"model written to {args.out}")
        else:
            model = QualityModel(args.model)
            with open(args.file, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.strip():
                        print(f"{model.score(line):.4f}\t{line.strip()[:100]}")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
