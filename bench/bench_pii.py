"""PII benchmark: precision/recall per type on the labelled set, and pages/s on real page text.

    python bench/bench_pii.py [--realweb PATH] [--pages N]

Precision/recall are span-exact (type, start, end) against tests/pii_cases.py.  Throughput is
``redact`` (all types, phone region from the URL/TLD) over the visible text of the realweb pages
(lxml text of the HTML, a stand-in for extracted text; the extract stage's text is shorter, so
real throughput is higher).  Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from filters.pii import PII_TYPES, find_pii, redact, region_hint_for  # noqa: E402
from tests.pii_cases import CASES, expected_spans  # noqa: E402


def precision_recall() -> None:
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    for text, region, labels in CASES:
        want = set(expected_spans(text, labels))
        got = set(find_pii(text, region_hint=region))
        for kind, _, _ in got & want:
            tp[kind] += 1
        for kind, _, _ in got - want:
            fp[kind] += 1
        for kind, _, _ in want - got:
            fn[kind] += 1
    negatives = sum(1 for _, _, labels in CASES if not labels)
    print(f"labelled set: {len(CASES)} texts ({negatives} negative-only)")
    print(f"{'type':<12} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8}")
    for kind in PII_TYPES:
        p = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else float("nan")
        r = tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else float("nan")
        print(f"{kind:<12} {tp[kind]:>4} {fp[kind]:>4} {fn[kind]:>4} {p:>10.3f} {r:>8.3f}")
    T, F, N = sum(tp.values()), sum(fp.values()), sum(fn.values())
    print(f"{'all':<12} {T:>4} {F:>4} {N:>4} {T / max(1, T + F):>10.3f} {T / max(1, T + N):>8.3f}")


def realweb_pages(path: Path, limit: int):
    from lxml import etree, html as lxml_html

    from pipelines.warc import iter_records, local_opener

    def wanted(rec):
        return rec.rec_type == "response" and rec.http_status == 200

    pages = []
    for rec in iter_records(local_opener(str(path)), str(path), want_body=wanted):
        if getattr(rec, "body", None):
            try:
                root = lxml_html.document_fromstring(rec.body)
            except (etree.ParserError, ValueError):
                continue
            for bad in root.xpath("//script|//style"):
                bad.drop_tree()
            pages.append((rec.target_uri, " ".join(root.text_content().split())))
            if len(pages) >= limit:
                break
    return pages


def throughput(path: Path, limit: int) -> None:
    pages = realweb_pages(path, limit)
    if not pages:
        print(f"no pages read from {path}")
        return
    chars = sum(len(t) for _, t in pages)
    found = collections.Counter()
    start = time.process_time()
    for url, text in pages:
        _, counts = redact(text, region_hint=region_hint_for(url, None))
        found.update({k: n for k, n in counts.items() if n})
    cpu = time.process_time() - start
    print(f"\nrealweb: {len(pages)} pages, {chars / 1e6:.1f} M chars, {cpu:.2f} CPU-s -> "
          f"{len(pages) / cpu:.0f} pages/CPU-s, {chars / cpu / 1e6:.2f} M chars/CPU-s")
    print("spans redacted on realweb (no ground truth; read as a sanity check):",
          dict(sorted(found.items())))


def main() -> None:
    default = Path(os.environ.get("CORPUS_SHARED_DATA", REPO.parent / "shared" / "data")) / "realweb" / "realweb.warc.gz"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realweb", type=Path, default=default)
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    precision_recall()
    if args.realweb.exists():
        throughput(args.realweb, args.pages)
    else:
        print(f"\n{args.realweb} not found: throughput skipped")


if __name__ == "__main__":
    main()
