"""The machine-speed reference of the cost model: figures from different days on one scale.

This sandbox's speed changes from day to day by more than any single lever (the same bare
trafilatura loop ran at 70.9 pages/CPU-s on 2026-11-24 and at 21.7-33.3 on 2026-12-01), so a CPU figure
means little without the speed of the machine it was taken on.  The reference is
``bench.bench_extract.bare_loop``: warcio-framed reading of realweb + ``trafilatura.extract`` per
HTML page, one process, third-party code at pinned versions (trafilatura, lxml, warcio).  The cost
model's CPU figures (``configs/cost.yaml`` ``measured``) are in units of a machine on which that
loop runs at ``measured.reference_pages_per_cpu_s`` pages/CPU-s (the 2026-11-24 machine the
extract figure was first measured on); a figure taken on another day converts with the loop run
in the same sitting::

    figure in reference units = figure measured here x reference_pages_per_cpu_s / loop here

``python bench/reference.py [--warc PATH] [--repeats 3]`` runs the loop alone and prints its
median: on a worker VM of the type a job will use, that is the figure to give ``make cost-estimate
COST_ARGS="--worker-loop X"`` (the dollars then assume that vCPU's speed).  Only the realweb WARC
(the default) gives comparable figures: other pages cost trafilatura other CPU.

``--reference`` on ``bench/bench_peers.py`` and ``bench/bench_refine.py`` runs the loop once per
round (interleaved with the measured runs, in a fresh process) and prints their figures both ways.
The loop reads with this project's reader, which has been made faster since 2026-11-24.  Reading
is a small part of the loop (trafilatura is most of it), but what it saved flatters today's loop
slightly, so converted figures come out slightly low.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
COST_CONFIG = ROOT / "configs" / "cost.yaml"

# bare_loop imports trafilatura before it starts its clock.
_LOOP = ("import json, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
         "from bench.bench_extract import bare_loop; "
         "print(json.dumps(bare_loop(Path(sys.argv[2]))))")


def reference_pages_per_cpu_s(config: Path = COST_CONFIG) -> float:
    """``measured.reference_pages_per_cpu_s`` of the cost config (validated by the cost model)."""
    from bench import cost_model

    return float(cost_model.load(config)["measured"]["reference_pages_per_cpu_s"])


def per_round(rates: Sequence[float | None], loops: Sequence[dict], reference: float) -> list[float]:
    """Each round's rate (pages/CPU-s measured here) in reference units, converted with that
    round's own loop (the load changes from round to round): ``rate x reference / loop``.  A round
    whose rate is None (nothing measurable: a margin that came out zero or negative) is left out;
    the result keeps the rounds' order."""
    if len(rates) != len(loops):
        raise ValueError(f"{len(rates)} rounds but {len(loops)} reference loops")
    return [rate * reference / loop["pages_per_cpu_s"] for rate, loop in zip(rates, loops) if rate is not None]


def lower_quartile(values: Sequence[float]) -> float:
    """The lower quartile (``statistics.quantiles(..., method="inclusive")``); the value itself
    when there is one."""
    if not values:
        raise ValueError("no values")
    return values[0] if len(values) < 2 else statistics.quantiles(values, n=4, method="inclusive")[0]


def reference_run(warc: Path, python: str = sys.executable) -> dict:
    """One run of the reference loop over ``warc`` in a fresh process (trafilatura imported before
    the clock starts): its ``pages``, ``cpu_s`` and ``pages_per_cpu_s``."""
    done = subprocess.run([python, "-c", _LOOP, str(ROOT), str(warc)], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine_factor(runs: Sequence[dict], reference: float) -> float:
    """How many times faster the reference machine is than this one: ``reference`` over the median
    pages/CPU-s of the loop's ``runs`` (taken in the same sitting as the figures to convert)."""
    if not runs:
        raise ValueError("no reference runs")
    return reference / statistics.median(r["pages_per_cpu_s"] for r in runs)


def describe(runs: Sequence[dict], reference: float) -> str:
    """One line: the loop's runs here and the factor they give."""
    rates = ", ".join(f"{r['pages_per_cpu_s']:.1f}" for r in runs)
    return (f"reference loop (bench.reference): {rates} pages/CPU-s here, median "
            f"{statistics.median(r['pages_per_cpu_s'] for r in runs):.1f}; the cost model's reference machine: "
            f"{reference:.1f} -> factor {machine_factor(runs, reference):.3f}")


def main(argv: list[str] | None = None) -> int:
    from bench.bench_extract import DEFAULT_WARC

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC, help="default: the realweb WARC of ../shared")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.warc.is_file():
        print(f"error: {args.warc} not found (pass --warc or set CORPUS_SHARED_DATA)", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print("error: --repeats must be at least 1", file=sys.stderr)
        return 2
    runs = []
    for i in range(args.repeats):
        runs.append(reference_run(args.warc))
        print(f"[{i + 1}] {runs[-1]['pages']} pages, {runs[-1]['cpu_s']:.1f} CPU-s, "
              f"{runs[-1]['pages_per_cpu_s']:.1f} pages/CPU-s", flush=True)
    median = statistics.median(r["pages_per_cpu_s"] for r in runs)
    if args.warc.resolve() != DEFAULT_WARC.resolve():
        print(f"median {median:.1f} pages/CPU-s on {args.warc.name}: not comparable with the reference "
              "machine's figure, which is for the realweb WARC")
        return 0
    print(describe(runs, reference_pages_per_cpu_s()))
    print(f"make cost-estimate COST_ARGS=\"--worker-loop {median:.1f}\" prices this vCPU")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
