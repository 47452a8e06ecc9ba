"""CPU cost of each signal family per page, on the realweb pages' extracted texts.

    python bench/bench_signals.py [--warc PATH] [--texts FILE.jsonl] [--repeat 3]
                                  [--compare DIR] [--limit N] [--families pii,quality]

Extracts the pages once with the extract stage's own path (``iter_records`` ->
``header_outcome`` / ``extract_document`` with the default config; ``--texts`` caches the result
as JSON lines so later runs skip extraction), then times every signal family over all texts in
one process (``time.process_time``): language ID, quality measures, toxicity (profanity_check
classifier on English pages, plus word lists when ``--wordlists DIR`` is given), PII counts.
Each family is run ``--repeat`` times interleaved and the median is printed as CPU-s and ms/page.

``--compare DIR`` also times a frozen copy of other implementations of the same modules (a
directory holding a ``filters`` package, e.g. made with ``git show REV:filters/quality.py``),
interleaved with the current ones, and checks that both give identical values.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_extract import DEFAULT_WARC  # noqa: E402

FAMILY_MODULES = ("text_units", "pii_validators", "pii", "quality_ngrams", "quality", "toxicity", "language")


def extracted_pages(warc: Path, cfg: dict | None = None) -> Iterator[dict[str, Any]]:
    """``{"key", "url", "text"}`` of every page the extract stage keeps, in WARC order."""
    from pipelines.config import load_config
    from pipelines.html_text import Extractor, extractor_options
    from pipelines.records import extract_document, header_outcome, want_body
    from pipelines.warc import ReadError, iter_records, local_opener
    from pipelines.warc_framing import HeaderLimits

    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    logging.getLogger("warcio").setLevel(logging.ERROR)
    ecfg = (cfg or load_config())["extract"]
    extractor = Extractor(extractor_options(ecfg), 0, ecfg["extractor"])
    limits = HeaderLimits(ecfg["max_header_line_bytes"], ecfg["max_header_block_bytes"])
    for item in iter_records(local_opener(str(warc)), str(warc), want_body=want_body(ecfg),
                             max_body_bytes=ecfg["max_payload_bytes"],
                             max_decoded_bytes=ecfg["max_decoded_bytes"], header_limits=limits):
        if isinstance(item, ReadError) or header_outcome(item, ecfg) is not None:
            continue
        outcome = extract_document(item, ecfg, extractor)
        if outcome.doc is not None:
            yield {"key": f"{item.offset}", "url": outcome.doc["url"], "text": outcome.doc["text"]}


def load_pages(warc: Path, cache: Path | None) -> list[dict[str, Any]]:
    if cache is not None and cache.is_file():
        with open(cache, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]
    pages = list(extracted_pages(warc))
    if cache is not None:
        with open(cache, "w", encoding="utf-8") as fh:
            for page in pages:
                fh.write(json.dumps(page, ensure_ascii=False) + "\n")
    return pages


def load_frozen(directory: Path) -> dict[str, ModuleType]:
    """The modules of ``directory/filters`` loaded under private names, importing each other."""
    pkg = f"_frozen_filters_{abs(hash(str(directory)))}"
    spec = importlib.util.spec_from_file_location(pkg, directory / "filters" / "__init__.py",
                                                  submodule_search_locations=[str(directory / "filters")])
    package = importlib.util.module_from_spec(spec)
    sys.modules[pkg] = package
    spec.loader.exec_module(package)
    out = {}
    for name in FAMILY_MODULES:
        path = directory / "filters" / f"{name}.py"
        if not path.is_file():
            continue
        source = path.read_text(encoding="utf-8").replace("from filters import", f"from {pkg} import")
        module = ModuleType(f"{pkg}.{name}")
        module.__file__ = str(path)
        sys.modules[module.__name__] = module
        setattr(package, name, module)
        exec(compile(source, str(path), "exec"), module.__dict__)
        out[name] = module
    return out


def families(mods: dict[str, ModuleType], cfg: dict, wordlists: str | None,
             langs: list[str]) -> dict[str, Callable[[list[dict]], list]]:
    """Family name -> function over all pages returning each page's values."""
    lid = mods["language"].LanguageIdentifier(cfg["language"]["model_path"])
    clf = mods["toxicity"].ToxicityClassifier("profanity_check")
    scorer = mods["toxicity"].WordListScorer(wordlists) if wordlists else None
    qcfg = cfg["quality"]
    pii_cfg = cfg.get("pii") or {}
    placeholders, regions = dict(pii_cfg.get("placeholders") or {}), pii_cfg.get("phone_regions_by_language")
    enabled = [t for t, p in placeholders.items() if p is not None] if placeholders else None
    pii = mods["pii"]

    def pii_pages(pages):
        # filters.pii memoizes phone-number parsing per process: each timed run starts cold, as a
        # worker does, so that a run does not profit from the one before it.
        clear = getattr(getattr(mods["pii_validators"], "phone_number", None), "cache_clear", None)
        if clear is not None:
            clear()
        return [pii_counts(p, lang) for p, lang in zip(pages, langs)]

    def pii_counts(page, lang):
        counts: dict[str, int] = {}
        for kind, _, _ in pii.find_pii(page["text"], enabled, pii.region_hint_for(page["url"], lang, regions)):
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    out = {
        "language ID": lambda pages: [lid.identify(p["text"]) for p in pages],
        "quality measures": lambda pages: [
            mods["quality"].measure(p["text"], lang, policy_phrases=qcfg["policy_phrases"],
                                    max_word_chars=qcfg["max_word_chars"]) for p, lang in zip(pages, langs)],
        "toxicity classifier (en pages)": lambda pages: [
            clf.score(p["text"]) if lang == "en" else None for p, lang in zip(pages, langs)],
        "PII counts": pii_pages,
    }
    if scorer is not None:
        out["toxicity word lists"] = lambda pages: [scorer.score(p["text"], lang) for p, lang in zip(pages, langs)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--texts", type=Path, help="JSON-lines cache of the extracted texts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, help="only the first N pages")
    parser.add_argument("--wordlists", help="LDNOOBW-style word-list directory (times the word-list score)")
    parser.add_argument("--compare", type=Path, help="directory with a frozen filters/ package to compare")
    parser.add_argument("--families", help="comma-separated words: time only the families whose name holds one")
    args = parser.parse_args()
    if not (args.texts and args.texts.is_file()) and not args.warc.exists():
        raise SystemExit(f"benchmark input {args.warc} not found (set CORPUS_SHARED_DATA or pass --warc)")
    from pipelines.config import load_config

    import filters.language, filters.pii, filters.pii_validators, filters.quality  # noqa: E401,F401
    import filters.text_units, filters.toxicity  # noqa: E401,F401

    cfg = load_config()
    pages = load_pages(args.warc, args.texts)[: args.limit]
    current = {name: sys.modules[f"filters.{name}"] for name in FAMILY_MODULES}
    langs = [current["language"].LanguageIdentifier(cfg["language"]["model_path"]).identify(p["text"])[0]
             for p in pages]
    impls = {"current": families(current, cfg, args.wordlists, langs)}
    if args.compare:
        impls["compared"] = families(load_frozen(args.compare), cfg, args.wordlists, langs)
    if args.families:
        wanted = [w.strip().lower() for w in args.families.split(",") if w.strip()]
        impls = {impl: {name: fn for name, fn in fams.items() if any(w in name.lower() for w in wanted)}
                 for impl, fams in impls.items()}
    # warm-up: segmenters, stop-word lists and lazily loaded models are loaded outside the timing
    for fams in impls.values():
        for fn in fams.values():
            fn(pages[:50])
    times: dict[tuple[str, str], list[float]] = {}
    values: dict[tuple[str, str], list] = {}
    for _ in range(args.repeat):
        for family in impls["current"]:
            for impl, fams in impls.items():
                c0 = time.process_time()
                values[impl, family] = fams[family](pages)
                times.setdefault((impl, family), []).append(time.process_time() - c0)
    print(f"{len(pages)} pages; median of {args.repeat} runs, CPU time (time.process_time)\n")
    head = "| family | " + " | ".join(f"{i} CPU-s | {i} ms/page" for i in impls) + \
           (" | speed-up | same values |" if args.compare else " |")
    print(head + "\n|---|" + "---:|" * (2 * len(impls)) + ("---:|---|" if args.compare else ""))
    totals = dict.fromkeys(impls, 0.0)
    for family in impls["current"]:
        cells = []
        for impl in impls:
            t = statistics.median(times[impl, family])
            totals[impl] += t
            cells += [f"{t:.2f}", f"{1000 * t / len(pages):.2f}"]
        if args.compare:
            old, new = statistics.median(times["compared", family]), statistics.median(times["current", family])
            same = values["compared", family] == values["current", family]
            cells += [f"{old / new:.2f}x" if new else "-", "yes" if same else "**NO**"]
        print(f"| {family} | " + " | ".join(cells) + " |")
    cells = [c for impl in impls for c in (f"{totals[impl]:.2f}", f"{1000 * totals[impl] / len(pages):.2f}")]
    if args.compare:
        cells += [f"{totals['compared'] / totals['current']:.2f}x", ""]
    print("| **all** | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
