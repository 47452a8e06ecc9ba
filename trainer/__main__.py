"""python -m trainer train|eval|sample|export ..."""
from __future__ import annotations

import argparse
import json
import sys


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train or resume a GPT on tokenized shards")
    t.add_argument("--data", required=True, help="tokenized shards directory (manifest.json)")
    t.add_argument("--config", help="YAML config, e.g. configs/train/tiny.yaml")
    t.add_argument("--out", required=True, help="run directory (checkpoint, metrics, tokenizer)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    t.add_argument("--stop-after", type=int, default=None,
                   help="end this invocation after that many completed steps (resume later)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    e = sub.add_parser("eval", help="loss and perplexity of a run on shards or a text file")
    e.add_argument("--ckpt", required=True, help="run directory (or its ckpt.pt)")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="tokenized shards directory")
    src.add_argument("--text", help="UTF-8 text file, tokenized with the run's tokenizer")
    e.add_argument("--split", default="val")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--max-windows", type=int, default=None, help="evaluate on this many windows")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true", help="print the result as JSON")

    s = sub.add_parser("sample", help="generate text from a run")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--prompt", default="")
    s.add_argument("--max-new-tokens", type=int, default=200)
    s.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    s.add_argument("--top-k", type=int, default=200, help="0 disables")
    s.add_argument("--top-p", type=float, default=1.0, help="1.0 disables")
    s.add_argument("--seed", type=int, default=1337)
    s.add_argument("--num-samples", type=int, default=1)
    s.add_argument("--device", default="auto")

    x = sub.add_parser("export", help="write a Hugging Face GPT-2 directory")
    x.add_argument("--ckpt", required=True)
    x.add_argument("--out", required=True)

    a = p.parse_args(argv)
    try:
        if a.cmd == "train":
            from .checkpoint import load
            from .train import load_config, train_from_shards

            if not a.resume and not a.config:
                p.error("train needs --config (or --resume to continue a run)")
            base = load(a.out, mmap=True)["train_config"] if a.resume else None
            cfg = load_config(a.config, a.overrides, base=base)
            train_from_shards(a.data, cfg, a.out, resume=a.resume, stop_after=a.stop_after,
                              progress=not a.no_progress)
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
            from .sample import sample_run

            for i, text in enumerate(sample_run(a.ckpt, a.prompt, a.max_new_tokens, a.temperature,
                                                a.top_k or None, a.top_p, a.seed, a.num_samples,
                                                _device(a.device))):
                if a.num_samples > 1:
                    print(f"----- sample {i + 1} -----")
                print(text)
        elif a.cmd == "export":
            from .export import export_hf

            print(export_hf(a.ckpt, a.out))
    except (FileNotFoundError, ValueError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
