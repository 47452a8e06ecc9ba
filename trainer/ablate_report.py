"""Results of an ablation (``ablate.py``): the summary dict, a Markdown table and an SVG plot.

* ``summarize``: per variant and eval set the mean and sample standard deviation (ddof 1; 0 for
  one seed) over seeds of bits per byte, loss and perplexity; tokens seen, training tokens, epochs
  and whether the data was repeated or cut.  Differences are against the first variant:
  ``mean(v) - mean(base)`` with the standard error ``sqrt(sd_v^2/n_v + sd_base^2/n_base)``; a
  difference "exceeds the seed spread" when it is larger than twice that error (about a 95%
  interval, rough with 3 seeds), otherwise it is reported as within the spread.
* ``svg``: the validation curves (bits per byte on the first eval text against the step), one
  colour per variant, one line per seed; hand-written SVG (no plotting dependency).
"""
from __future__ import annotations

import math
import statistics

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


def summarize(results: list[dict], variants, eval_info: dict, config: dict, steps: int, per_step: int,
              seeds: int, contamination: list[dict]) -> dict:
    out = {"config": config, "steps": steps, "tokens_per_step": per_step, "tokens_per_run": steps * per_step,
           "seeds": sorted({r["seed"] for r in results}), "evals": eval_info,
           "contamination_check": contamination, "variants": {}, "differences": {}}
    for v in variants:
        runs = [r for r in results if r["variant"] == v.name]
        epochs = v.train_tokens and steps * per_step / v.train_tokens
        entry = {"shards": str(v.shards), "train_tokens": v.train_tokens,
                 "tokens_seen": sorted({r["tokens_seen"] for r in runs}),
                 "epochs": epochs, "data": "repeated" if epochs > 1 else "cut",
                 "runs": len(runs), "evals": {}}
        for e in eval_info:
            entry["evals"][e] = {k: _stats([r["evals"][e][k] for r in runs])
                                 for k in ("bits_per_byte", "loss", "perplexity")}
        out["variants"][v.name] = entry
    names = list(out["variants"])
    base = names[0]
    for e in eval_info:
        b = out["variants"][base]["evals"][e]["bits_per_byte"]
        diffs = {}
        for name in names[1:]:
            s = out["variants"][name]["evals"][e]["bits_per_byte"]
            se = math.sqrt(s["std"] ** 2 / s["n"] + b["std"] ** 2 / b["n"])
            d = s["mean"] - b["mean"]
            diffs[name] = {"vs": base, "diff": d, "se": se,
                           "exceeds_seed_spread": bool(se > 0 and abs(d) > 2 * se)}
        out["differences"][e] = diffs
    return out


def _pm(s: dict, fmt: str = ".4f") -> str:
    return f"{s['mean']:{fmt}} ± {s['std']:{fmt}}"


def markdown(s: dict) -> str:
    evals = list(s["evals"])
    lines = [f"# Ablation: {len(s['variants'])} variants x {len(s['seeds'])} seeds "
             f"(seeds {', '.join(map(str, s['seeds']))})", "",
             f"Same model and schedule for every run: {s['steps']} steps x {s['tokens_per_step']:,} tokens = "
             f"{s['tokens_per_run']:,} training tokens per run. Scores are for the final checkpoint, "
             "mean ± standard deviation over seeds; bits per byte (lower is better) is comparable "
             "across tokenizers, loss (nats/token) and perplexity only within one tokenizer.", "",
             "| variant | train tokens | epochs (data) | " + " | ".join(f"{e} bits/byte" for e in evals)
             + " | " + " | ".join(f"{e} ppl" for e in evals) + " |",
             "|---" * (3 + 2 * len(evals)) + "|"]
    for name, v in s["variants"].items():
        lines.append(f"| {name} | {v['train_tokens']:,} | {v['epochs']:.2f} ({v['data']}) | "
                     + " | ".join(_pm(v["evals"][e]["bits_per_byte"]) for e in evals) + " | "
                     + " | ".join(_pm(v["evals"][e]["perplexity"], ".1f") for e in evals) + " |")
    lines += ["", "Differences in bits per byte against the first variant (negative = better), "
              "± the standard error of the difference over seeds:", ""]
    verdicts = []
    for e, diffs in s["differences"].items():
        for name, d in diffs.items():
            mark = "exceeds" if d["exceeds_seed_spread"] else "within"
            lines.append(f"* {e}: {name} - {d['vs']} = {d['diff']:+.4f} ± {d['se']:.4f} ({mark} the seed spread)")
            verdicts.append(d["exceeds_seed_spread"])
    if verdicts:
        n = sum(verdicts)
        rest = "" if n == len(verdicts) else "; the others are inside the seed spread at this scale"
        lines += ["", (f"{n} of {len(verdicts)} differences exceed twice their standard error over "
                       f"seeds{rest}." if n else
                       "No difference exceeds twice its standard error over seeds: at this scale the "
                       "variants cannot be told apart from seed noise.")]
    hits = sum(c["documents_hit"] for c in s["contamination_check"])
    lines += ["", f"Eval texts checked against every variant's shards (word {s['contamination_check'][0]['ngram']}"
              f"-grams): {hits} document(s) overlap." if s["contamination_check"] else ""]
    for e, info in s["evals"].items():
        lines.append(f"* {e}: {info['path']}, {info['bytes']:,} bytes")
    return "\n".join(lines) + "\n"


def svg(results: list[dict], eval_name: str, width: int = 640, height: int = 400) -> str:
    pts = [(x, y) for r in results for x, y in r["curve"] if math.isfinite(y)]
    left, right, top, bottom = 60, 130, 30, 45
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n'
            f'<text x="{left}" y="18" font-size="13">Validation: bits per byte on {_esc(eval_name)} '
            f'(one line per seed)</text>\n')
    if not pts:
        return head + '<text x="60" y="60">no evaluations recorded</text>\n</svg>\n'
    x0, x1 = 0, max(x for x, _ in pts) or 1
    y0, y1 = min(y for _, y in pts), max(y for _, y in pts)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + (y1 - y) / (y1 - y0) * ph

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
    for k in range(5):
        y = y0 + (y1 - y0) * k / 4
        x = x0 + (x1 - x0) * k / 4
        body.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3f}</text>')
        body.append(f'<text x="{sx(x):.1f}" y="{top + ph + 16}" text-anchor="middle">{x:.0f}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">step</text>')
    names = list(dict.fromkeys(r["variant"] for r in results))
    for r in results:
        c = _COLOURS[names.index(r["variant"]) % len(_COLOURS)]
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in r["curve"] if math.isfinite(y))
        body.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" stroke-opacity="0.8" points="{line}"/>')
    for i, n in enumerate(names):
        c = _COLOURS[i % len(_COLOURS)]
        y = top + 14 + 16 * i
        body.append(f'<line x1="{width - right + 10}" y1="{y - 4}" x2="{width - right + 30}" y2="{y - 4}" '
                    f'stroke="{c}" stroke-width="2"/><text x="{width - right + 35}" y="{y}">{_esc(n)}</text>')
    return head + "\n".join(body) + "\n</svg>\n"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
