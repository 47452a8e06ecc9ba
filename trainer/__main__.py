"""python -m trainer train|eval|sample|export ...

Every argument is checked before any work: a bad value is a one-line error and exit status 2
(argparse's own errors for flags, ``error: ...`` for config values and output directories).
``key=value`` overrides of ``train`` may stand anywhere among the flags.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available")
    return name


def _device_arg(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def _ranged(typ, low=None, high=None, low_open=False):
    """An argparse type: ``typ`` (finite) within [low, high] (low excluded with ``low_open``)."""
    def parse(text: str):
        try:
            value = typ(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if typ is int else 'a number'}, "
                                             f"got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            bounds = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else f'{high}]'}"
            raise argparse.ArgumentTypeError(f"must be in {bounds}, got {text!r}")
        return value
    return parse


MAX_SEED = 2**63 - 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train or resume a GPT on tokenized shards")
    t.add_argument("--data", required=True, help="tokenized shards directory (manifest.json)")
    t.add_argument("--config", help="YAML config, e.g. configs/train/tiny.yaml")
    t.add_argument("--out", required=True, help="run directory (checkpoint, metrics, tokenizer)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in OUT (without it or --resume, an earlier run is refused)")
    t.add_argument("--stop-after", type=_ranged(int, 1), default=None,
                   help="end this invocation after that many completed steps (resume later)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    e = sub.add_parser("eval", help="loss and perplexity of a run on shards or a text file")
    e.add_argument("--ckpt", required=True, help="run directory (or its ckpt.pt)")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="tokenized shards directory")
    src.add_argument("--text", help="UTF-8 text file, tokenized with the run's tokenizer")
    e.add_argument("--split", default="val")
    e.add_argument("--batch-size", type=_ranged(int, 1, 16384), default=8)
    e.add_argument("--max-windows", type=_ranged(int, 1), default=None, help="evaluate on this many windows")
    e.add_argument("--device", type=_device_arg, default="auto")
    e.add_argument("--json", action="store_true", help="print the result as JSON")

    s = sub.add_parser("sample", help="generate text from a run")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--prompt", default="")
    s.add_argument("--max-new-tokens", type=_ranged(int, 0), default=200)
    s.add_argument("--temperature", type=_ranged(float, 0), default=0.8, help="0 = greedy")
    s.add_argument("--top-k", type=_ranged(int, 0), default=200, help="0 disables")
    s.add_argument("--top-p", type=_ranged(float, 0, 1, low_open=True), default=1.0, help="1.0 disables")
    s.add_argument("--seed", type=_ranged(int, 0, MAX_SEED), default=1337)
    s.add_argument("--num-samples", type=_ranged(int, 1, 10000), default=1)
    s.add_argument("--device", type=_device_arg, default="auto")

    x = sub.add_parser("export", help="write a Hugging Face GPT-2 directory")
    x.add_argument("--ckpt", required=True)
    x.add_argument("--out", required=True)

    from . import ablate  # python -m trainer ablate: see trainer/ablate.py
    ablate.add_parser(sub)

    a, extra = p.parse_known_args(argv)
    if a.cmd in ("train", "ablate"):  # key=value overrides may follow flags: argparse leaves the later ones over
        a.overrides += [x for x in extra if "=" in x and not x.startswith("-")]
        extra = [x for x in extra if x not in a.overrides]
    if extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if a.cmd in ("train", "export"):
            from settings import check_output_dir  # Beam-free

            check_output_dir(a.out, "--out")
        if a.cmd == "train":
            from .checkpoint import load
            from .train import load_config, train_from_shards

            from .rundir import check_run_dir

            if not a.resume and not a.config:
                p.error("train needs --config (or --resume to continue a run)")
            check_run_dir(a.out, a.resume, a.overwrite)
            base = load(a.out, mmap=True)["train_config"] if a.resume else None
            cfg = load_config(a.config, a.overrides, base=base)
            if cfg.device == "cuda":
                import torch

                if not torch.cuda.is_available():
                    raise ValueError("device=cuda but CUDA is not available")
            train_from_shards(a.data, cfg, a.out, resume=a.resume, stop_after=a.stop_after,
                              progress=not a.no_progress, overwrite=a.overwrite)
        elif a.cmd == "eval":
            from .eval import evaluate_run

            r = evaluate_run(a.ckpt, data=a.data, text=a.text, split=a.split, batch_size=a.batch_size,
                             max_windows=a.max_windows, device=_device(a.device))
            if a.json:
                print(json.dumps(r))
            else:
                bpb = f", {r['bits_per_byte']:.4f} bits/byte" if "bits_per_byte" in r else ""
                print(f"{r['source']}: loss {r['loss']:.4f} nats/token, perplexity "
                      f"{r['perplexity']:.2f} over {r['tokens']:,} tokens{bpb} (step {r['step']})")
        elif a.cmd == "sample":
            from .checkpoint import model_file
            from .sample import sample_run

            print(f"sampling from {model_file(a.ckpt)}", file=sys.stderr)
            for i, text in enumerate(sample_run(a.ckpt, a.prompt, a.max_new_tokens, a.temperature,
                                                a.top_k or None, a.top_p, a.seed, a.num_samples,
                                                _device(a.device))):
                if a.num_samples > 1:
                    print(f"----- sample {i + 1} -----")
                print(text)
        elif a.cmd == "ablate":
            return ablate.main(a)
        elif a.cmd == "export":
            from .export import export_hf

            print(export_hf(a.ckpt, a.out))
    except (FileNotFoundError, ValueError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
