"""What one full Common Crawl snapshot costs on Dataflow: vCPU-hours, memory, shuffle, dollars.

    .venv/bin/python bench/cost_model.py [--config configs/cost.yaml] [--warcs N] [--flexrs] [--json]
                                         [--extract-config NAME] [--peers bench_peers.json]
                                         [--worker-loop PAGES_PER_CPU_S]
    make cost-estimate

``extract_configurations`` in the config names the documented extract configurations (the
default and, for example, the resiliparse fast mode) with their speed relative to the measured
default (``speedup_vs_default``: CPU-s of the default / CPU-s of the configuration, both measured
in one ``bench/bench_peers.py`` run, so machine load cancels out) and their extraction quality.
The report details one of them (``--extract-config``, default ``default``) and ends with the total
of every configuration.  ``--peers FILE`` takes the speed-ups from a ``bench_peers.py --json`` file
instead of the config.

Every CPU figure is in the units of one reference machine (``bench/reference.py``): the vCPU the
dollars assume runs that module's loop at ``measured.reference_pages_per_cpu_s``.  ``--worker-loop
X`` prices a vCPU that runs it at X instead (run ``python bench/reference.py`` on the worker type).

Projects the measured per-core throughputs of the stages (configs/cost.yaml ``measured``, from
the benchmarks) onto a snapshot (~90,000 WARC files, ~3 billion pages) with the documented
assumptions and Dataflow prices of the same file, and prints every input it used.  A model, not a
measurement: its biggest unknowns are how much of a real snapshot survives each stage and how
well Dataflow keeps its vCPUs busy.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "cost.yaml"
STAGES = ("extract", "refine", "tokenize")
REQUIRED = {
    "snapshot": ("warc_files", "pages_per_warc", "warc_gb"),
    "prices": ("vcpu_hour", "memory_gb_hour", "shuffle_gb", "pd_gb_hour", "flexrs_discount", "input_transfer_gb"),
    "workers": ("vcpus", "memory_gb", "pd_gb", "cpu_utilization"),
    "measured": ("reference_pages_per_cpu_s", "extract_pages_per_cpu_s", "refine_pages_per_cpu_s", "tokenize_mb_per_s_per_core",
                 "bytes_per_token", "extracted_row_bytes_per_doc", "refine_shuffle_bytes_per_doc",
                 "refined_text_bytes_per_doc"),
    "assumptions": ("html_share_of_pages", "extract_keep_share", "refine_keep_share", "refine_cpu_scale",
                    "extract_shuffle_passes", "tokenize_text_shuffle_passes", "tokenize_token_shuffle_passes"),
}
# A configuration's documents differ (resiliparse keeps longer texts), so refine's measured figures
# may be given per configuration too; absent, the ``measured`` ones (the default's) apply.
REFINE_OVERRIDES = ("refine_pages_per_cpu_s", "refine_shuffle_bytes_per_doc")
CONFIG_KEYS = {"config", "speedup_vs_default", "extraction_f1", "source", *REFINE_OVERRIDES}
# The throughputs measured in reference units (measured.reference_pages_per_cpu_s).
CPU_FIGURES = ("extract_pages_per_cpu_s", "extract_only_pages_per_cpu_s", "refine_pages_per_cpu_s",
               "tokenize_mb_per_s_per_core")
SHARES = ("html_share_of_pages", "extract_keep_share", "refine_keep_share", "cpu_utilization", "flexrs_discount")


class CostConfigError(ValueError):
    """A missing or impossible value in the cost config; the message names it."""


def load(path: str | Path = DEFAULT_CONFIG) -> dict:
    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    validate(cfg, str(path))
    return cfg


def validate(cfg: Mapping[str, Any], where: str = "cost config") -> None:
    for section, keys in REQUIRED.items():
        if not isinstance(cfg.get(section), Mapping):
            raise CostConfigError(f"{where}: section {section!r} is missing")
        for key in keys:
            value = cfg[section].get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CostConfigError(f"{where}: {section}.{key} must be a number, got {value!r}")
            if value < 0:
                raise CostConfigError(f"{where}: {section}.{key} must not be negative, got {value}")
            if key in SHARES and value > 1:
                raise CostConfigError(f"{where}: {section}.{key} is a share and must be <= 1, got {value}")
    configs = cfg.get("extract_configurations", {"default": {"speedup_vs_default": 1.0}})
    if not isinstance(configs, Mapping) or "default" not in configs:
        raise CostConfigError(f"{where}: extract_configurations must be a mapping with a 'default' entry")
    for name, entry in configs.items():
        if not isinstance(entry, Mapping):
            raise CostConfigError(f"{where}: extract_configurations.{name} must be a mapping")
        unknown = sorted(set(entry) - CONFIG_KEYS)
        if unknown:
            raise CostConfigError(f"{where}: extract_configurations.{name}: unknown key(s) {', '.join(unknown)} "
                                  f"(known: {', '.join(sorted(CONFIG_KEYS))})")
        speed = entry.get("speedup_vs_default")
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed <= 0:
            raise CostConfigError(f"{where}: extract_configurations.{name}.speedup_vs_default must be a "
                                  f"positive number, got {speed!r}")
        for key in REFINE_OVERRIDES:
            value = entry.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise CostConfigError(f"{where}: extract_configurations.{name}.{key} must be a positive "
                                      f"number, got {value!r}")
    for section, key in (("measured", "reference_pages_per_cpu_s"), ("measured", "extract_pages_per_cpu_s"), ("measured", "refine_pages_per_cpu_s"),
                         ("measured", "tokenize_mb_per_s_per_core"), ("measured", "bytes_per_token"),
                         ("workers", "vcpus"), ("workers", "cpu_utilization")):
        if cfg[section][key] <= 0:
            raise CostConfigError(f"{where}: {section}.{key} must be positive")


def at_worker_speed(cfg: Mapping[str, Any], loop_pages_per_cpu_s: float) -> dict:
    """``cfg`` with every CPU figure moved from the reference machine to a vCPU on which
    ``bench/reference.py``'s loop runs at ``loop_pages_per_cpu_s``: each figure times loop /
    ``measured.reference_pages_per_cpu_s`` (which becomes the loop's figure)."""
    if isinstance(loop_pages_per_cpu_s, bool) or not isinstance(loop_pages_per_cpu_s, (int, float)) \
            or not math.isfinite(loop_pages_per_cpu_s) or loop_pages_per_cpu_s <= 0:
        raise CostConfigError(f"--worker-loop must be a positive number of pages/CPU-s, got {loop_pages_per_cpu_s!r}")
    validate(cfg)
    out = copy.deepcopy(dict(cfg))
    scale = loop_pages_per_cpu_s / out["measured"]["reference_pages_per_cpu_s"]
    for key in CPU_FIGURES:
        if key in out["measured"]:
            out["measured"][key] *= scale
    for entry in (out.get("extract_configurations") or {}).values():
        if "refine_pages_per_cpu_s" in entry:
            entry["refine_pages_per_cpu_s"] *= scale
    out["measured"]["reference_pages_per_cpu_s"] = loop_pages_per_cpu_s
    return out


def _num(x: float) -> float:
    """A figure as the config gives it (858, 3.7), or to 4 significant digits once scaled."""
    return x if isinstance(x, int) else float(f"{x:.4g}")


def extract_configurations(cfg: Mapping[str, Any]) -> dict:
    """Name -> entry of the documented extract configurations (always has ``default``)."""
    return dict(cfg.get("extract_configurations") or {"default": {"speedup_vs_default": 1.0}})


def estimate(cfg: Mapping[str, Any], *, warcs: int | None = None, flexrs: bool = False,
             extract_config: str = "default") -> dict:
    """Per stage and total: CPU-seconds, vCPU-hours, memory GB-hours, shuffle GB, dollars."""
    validate(cfg)
    configs = extract_configurations(cfg)
    if extract_config not in configs:
        raise CostConfigError(f"no extract configuration {extract_config!r} (known: {', '.join(configs)})")
    speedup = configs[extract_config]["speedup_vs_default"] / configs["default"]["speedup_vs_default"]
    snap, price, work, m, a = (cfg[k] for k in ("snapshot", "prices", "workers", "measured", "assumptions"))
    m = {**m, **{k: configs[extract_config][k] for k in REFINE_OVERRIDES if k in configs[extract_config]}}
    warc_files = snap["warc_files"] if warcs is None else warcs
    pages = warc_files * snap["pages_per_warc"]
    html = pages * a["html_share_of_pages"]
    extracted = html * a["extract_keep_share"]
    refined = extracted * a["refine_keep_share"]
    refined_bytes = refined * m["refined_text_bytes_per_doc"]
    tokens = refined_bytes / m["bytes_per_token"]
    row = m["extracted_row_bytes_per_doc"]

    cpu_s = {
        "extract": html / (m["extract_pages_per_cpu_s"] * speedup),
        "refine": extracted / m["refine_pages_per_cpu_s"] * a["refine_cpu_scale"],
        "tokenize": refined_bytes / 1e6 / m["tokenize_mb_per_s_per_core"],
    }
    shuffle_bytes = {
        "extract": extracted * row * a["extract_shuffle_passes"],
        "refine": extracted * m["refine_shuffle_bytes_per_doc"],
        "tokenize": (refined_bytes * a["tokenize_text_shuffle_passes"]
                     + tokens * 2 * a["tokenize_token_shuffle_passes"]),
    }
    discount = price["flexrs_discount"] if flexrs else 0.0
    stages = {}
    for stage in STAGES:
        vcpu_h = cpu_s[stage] / 3600 / work["cpu_utilization"]
        mem_gbh = vcpu_h * work["memory_gb"] / work["vcpus"]
        pd_gbh = vcpu_h / work["vcpus"] * work["pd_gb"]
        shuffle_gb = shuffle_bytes[stage] / 1e9
        dollars = {
            "vcpu": vcpu_h * price["vcpu_hour"] * (1 - discount),
            "memory": mem_gbh * price["memory_gb_hour"] * (1 - discount),
            "shuffle": shuffle_gb * price["shuffle_gb"],
            "disk": pd_gbh * price["pd_gb_hour"],
        }
        stages[stage] = {"cpu_s": cpu_s[stage], "vcpu_hours": vcpu_h, "memory_gb_hours": mem_gbh,
                         "shuffle_gb": shuffle_gb, "pd_gb_hours": pd_gbh, "dollars": dollars,
                         "total_dollars": sum(dollars.values())}
    transfer = warc_files * snap["warc_gb"] * price["input_transfer_gb"]
    total = {key: sum(s[key] for s in stages.values())
             for key in ("cpu_s", "vcpu_hours", "memory_gb_hours", "shuffle_gb", "pd_gb_hours", "total_dollars")}
    total["input_transfer_dollars"] = transfer
    total["total_dollars"] += transfer
    return {"warc_files": warc_files, "pages": pages, "html_pages": html, "extracted_docs": extracted,
            "refined_docs": refined, "tokens": tokens, "flexrs": flexrs, "stages": stages, "total": total,
            "extract_config": extract_config, "extract_pages_per_cpu_s": m["extract_pages_per_cpu_s"] * speedup,
            "refine_pages_per_cpu_s": m["refine_pages_per_cpu_s"],
            "refine_shuffle_bytes_per_doc": m["refine_shuffle_bytes_per_doc"]}


def apply_peers(cfg: Mapping[str, Any], peers: Mapping[str, Any]) -> dict:
    """A copy of ``cfg`` whose configurations' speed-ups come from a ``bench_peers.py --json`` file
    (by the configuration's name; ``default`` is the baseline): the marginal CPU-s when the file
    has them (``--small-warc``), else the median CPU-s of each whole run."""
    runs = peers.get("runs") if isinstance(peers, Mapping) else None
    if not isinstance(runs, Mapping) or not runs.get("default"):
        raise CostConfigError("peers file: no 'runs' with a 'default' run (write it with bench_peers.py --json)")

    def median_cpu(name: str) -> float:
        return statistics.median(float(r["cpu_s"]) for r in runs[name])

    out = {**cfg, "extract_configurations": {k: dict(v) for k, v in extract_configurations(cfg).items()}}
    margin = peers.get("marginal_cpu_s") or {}  # start-up taken out (bench_peers --small-warc): what scales
    at_margin = margin.get("default", 0) > 0
    cpu = ({name: float(v) for name, v in margin.items()} if at_margin else
           {name: median_cpu(name) for name in runs if runs[name]})
    for name, entry in out["extract_configurations"].items():
        if cpu.get(name, 0) > 0:
            entry["speedup_vs_default"] = round(cpu["default"] / cpu[name], 3)
            entry["source"] = "bench_peers.py --json" + (" (at the margin)" if at_margin else "")
        f1 = (peers.get("f1") or {}).get(name)
        if isinstance(f1, Mapping) and "f1" in f1:
            entry["extraction_f1"] = round(float(f1["f1"]), 3)
    return out


def _n(x: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.2f}{unit}"
    return f"{x:.1f}"


def report(est: Mapping[str, Any], cfg: Mapping[str, Any]) -> str:
    p, w, m, a = cfg["prices"], cfg["workers"], cfg["measured"], cfg["assumptions"]
    lines = [f"One snapshot: {est['warc_files']:,} WARC files, {_n(est['pages'])} pages -> "
             f"{_n(est['html_pages'])} HTML pages extracted -> {_n(est['extracted_docs'])} documents -> "
             f"{_n(est['refined_docs'])} refined -> {_n(est['tokens'])} tokens"
             + ("   [FlexRS]" if est["flexrs"] else ""),
             "",
             f"{'stage':<10}{'vCPU-h':>12}{'mem GB-h':>12}{'shuffle GB':>12}{'$ vCPU':>10}{'$ mem':>9}"
             f"{'$ shuffle':>11}{'$ disk':>8}{'$ total':>10}"]
    for stage, s in est["stages"].items():
        d = s["dollars"]
        lines.append(f"{stage:<10}{s['vcpu_hours']:>12,.0f}{s['memory_gb_hours']:>12,.0f}{s['shuffle_gb']:>12,.0f}"
                     f"{d['vcpu']:>10,.0f}{d['memory']:>9,.0f}{d['shuffle']:>11,.0f}{d['disk']:>8,.0f}"
                     f"{s['total_dollars']:>10,.0f}")
    t = est["total"]
    lines.append(f"{'total':<10}{t['vcpu_hours']:>12,.0f}{t['memory_gb_hours']:>12,.0f}{t['shuffle_gb']:>12,.0f}"
                 f"{'':>38}{t['total_dollars']:>10,.0f}")
    if t["input_transfer_dollars"]:
        lines.append(f"  (includes ${t['input_transfer_dollars']:,.0f} input transfer)")
    lines += ["", "Assumptions (configs/cost.yaml):",
              f"  prices: ${p['vcpu_hour']}/vCPU-h, ${p['memory_gb_hour']}/GB-h memory, ${p['shuffle_gb']}/GB shuffle, "
              f"${p['pd_gb_hour']}/GB-h disk; FlexRS -{p['flexrs_discount']:.0%} on vCPU and memory; "
              f"input transfer ${p['input_transfer_gb']}/GB",
              f"  workers: {cfg['workers'].get('machine_type', '?')} ({w['vcpus']} vCPU, {w['memory_gb']} GB, "
              f"{w['pd_gb']} GB disk), {w['cpu_utilization']:.0%} of paid vCPU time busy",
              f"  measured: extract {_num(m['extract_pages_per_cpu_s'])} pages/CPU-s (with signals), refine "
              f"{_num(est['refine_pages_per_cpu_s'])} pages/CPU-s, tokenize {_num(m['tokenize_mb_per_s_per_core'])} MB/s/core, "
              f"{m['bytes_per_token']} bytes/token, {m['extracted_row_bytes_per_doc']} bytes per document row, "
              f"{est['refine_shuffle_bytes_per_doc']} bytes per document through refine's shuffles"
              + ("" if est.get("extract_config", "default") == "default"
                 else f" (refine figures of the {est['extract_config']} configuration)"),
              f"    CPU figures are for a vCPU on which bench/reference.py's loop runs at "
              f"{m['reference_pages_per_cpu_s']:g} pages/CPU-s (--worker-loop prices another; $ vCPU, $ mem "
              f"and $ disk scale with it)",
              f"    source: {' '.join(str(m.get('source', 'not given')).split())}",
              f"  estimated: {a['html_share_of_pages']:.0%} of pages are HTML 200, extract keeps "
              f"{a['extract_keep_share']:.0%}, refine keeps {a['refine_keep_share']:.0%}, refine CPU x"
              f"{a['refine_cpu_scale']} at scale; shuffle passes extract {a['extract_shuffle_passes']}, "
              f"tokenize {a['tokenize_text_shuffle_passes']} (text) + "
              f"{a['tokenize_token_shuffle_passes']} (tokens)",
              "  not included: GCS storage of outputs, the launcher VM, logging, failed/retried work"]
    if est.get("extract_config", "default") != "default":
        lines.insert(1, f"Extract configuration: {est['extract_config']} "
                        f"({est['extract_pages_per_cpu_s']:.1f} pages/CPU-s; its documents refine at "
                        f"{_num(est['refine_pages_per_cpu_s'])} pages/CPU-s with {est['refine_shuffle_bytes_per_doc']} "
                        "shuffled bytes each)")
    return "\n".join(lines)


def configurations_table(cfg: Mapping[str, Any], *, warcs: int | None = None) -> str:
    """One line per documented extract configuration: speed, quality, total dollars (and FlexRS)."""
    lines = ["Per extract configuration (same snapshot and assumptions):",
             f"  {'name':<10}{'pages/CPU-s':>12}{'snippet F1':>12}{'$ extract':>11}{'$ refine':>10}{'$ total':>10}"
             f"{'$ FlexRS':>10}  config"]
    for name, entry in extract_configurations(cfg).items():
        est = estimate(cfg, warcs=warcs, extract_config=name)
        flex = estimate(cfg, warcs=warcs, extract_config=name, flexrs=True)["total"]["total_dollars"]
        f1 = entry.get("extraction_f1")
        lines.append(f"  {name:<10}{est['extract_pages_per_cpu_s']:>12.1f}{(f'{f1:.3f}' if f1 else '-'):>12}"
                     f"{est['stages']['extract']['total_dollars']:>11,.0f}{est['stages']['refine']['total_dollars']:>10,.0f}"
                     f"{est['total']['total_dollars']:>10,.0f}"
                     f"{flex:>10,.0f}  {entry.get('config', '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="cost YAML (default configs/cost.yaml)")
    parser.add_argument("--warcs", type=int, default=None, help="WARC files instead of snapshot.warc_files")
    parser.add_argument("--flexrs", action="store_true", help="price with the FlexRS discount")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
    parser.add_argument("--extract-config", default="default",
                        help="which of extract_configurations to detail (default: default)")
    parser.add_argument("--peers", help="take the configurations' speed-ups from a bench_peers.py --json file")
    parser.add_argument("--worker-loop", type=float, metavar="PAGES_PER_CPU_S",
                        help="price for a worker vCPU on which `python bench/reference.py` prints this "
                             "(default: the reference machine's measured.reference_pages_per_cpu_s)")
    args = parser.parse_args(argv)
    try:
        cfg = load(args.config)
        if args.peers:
            with open(args.peers, encoding="utf-8") as fh:
                cfg = apply_peers(cfg, json.load(fh))
        if args.worker_loop is not None:
            cfg = at_worker_speed(cfg, args.worker_loop)
        if args.warcs is not None and args.warcs < 1:
            raise CostConfigError(f"--warcs must be at least 1, got {args.warcs}")
        est = estimate(cfg, warcs=args.warcs, flexrs=args.flexrs, extract_config=args.extract_config)
    except (OSError, CostConfigError, yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(est, indent=2, sort_keys=True))
    else:
        print(report(est, cfg))
        if not args.flexrs:
            flex = estimate(cfg, warcs=args.warcs, flexrs=True, extract_config=args.extract_config)
            print(f"\nWith FlexRS (--flexrs): ${flex['total']['total_dollars']:,.0f}")
        print()
        print(configurations_table(cfg, warcs=args.warcs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
