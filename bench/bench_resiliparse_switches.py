"""realweb snippet scores and text size of resiliparse's switches: what ``extract.resiliparse`` is set by.

    python bench/bench_resiliparse_switches.py [--warc PATH]

Decodes every page of the WARC the way the extract stage does (``records.extract_document`` with
an extractor that only captures the HTML it is given), then runs
``extract_plain_text(html, main_content=True, **switches)`` for each variant below in this process
and prints precision, recall and F1 against ``realweb-eval.json`` (``bench/extraction_eval.py``),
the mean characters of the texts and the CPU-s of the extraction.  Prints figures only.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_extract import DEFAULT_WARC  # noqa: E402

VARIANTS = {
    "resiliparse's defaults": {},
    "comments off": {"comments": False},
    "alt texts off": {"alt_texts": False},
    "alt texts + comments off": {"alt_texts": False, "comments": False},
    "+ skip nav/footer/aside": {"alt_texts": False, "comments": False, "skip_elements": ["nav", "footer", "aside"]},
}


def stage_html(warc: Path) -> list[tuple[str, str]]:
    """(url, decoded HTML) of every page the stage would hand to its extractor."""
    from pipelines.config import load_config
    from pipelines.html_text import Extracted
    from pipelines.records import extract_document, header_outcome, want_body
    from pipelines.warc import RawRecord, iter_records, local_opener

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as cfg_file:
        cfg_file.write("extract:\n  extractor: resiliparse\n")
        cfg_file.flush()
        cfg = load_config(cfg_file.name)["extract"]
    pages: list[tuple[str, str]] = []

    class Capture:
        def extract(self, html, url=None, utf8=None):
            pages.append((url, html))
            return Extracted(text="", title=None)

    for rec in iter_records(local_opener(str(warc)), str(warc), want_body=want_body(cfg),
                            max_body_bytes=cfg["max_payload_bytes"], max_decoded_bytes=cfg["max_decoded_bytes"]):
        if isinstance(rec, RawRecord) and header_outcome(rec, cfg) is None:
            extract_document(rec, cfg, Capture())
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    args = parser.parse_args()
    truth = args.warc.parent / "realweb-eval.json"
    if not args.warc.exists() or not truth.exists():
        raise SystemExit(f"benchmark input {args.warc} or {truth.name} not found (set CORPUS_SHARED_DATA or pass --warc)")
    from resiliparse.extract.html2text import extract_plain_text

    from bench.extraction_eval import score

    pages = stage_html(args.warc)
    print(f"{len(pages)} pages; extract_plain_text(html, main_content=True, ...)")
    print(f"{'switches':<28}{'precision':>10}{'recall':>8}{'F1':>7}{'mean chars':>12}{'CPU-s':>7}")
    for name, switches in VARIANTS.items():
        started = time.process_time()
        texts = {url: extract_plain_text(html, main_content=True, **switches) or "" for url, html in pages}
        cpu = time.process_time() - started
        s = score(texts, str(truth))
        mean = sum(map(len, texts.values())) / max(1, len(texts))
        print(f"{name:<28}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{mean:>12,.0f}{cpu:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
