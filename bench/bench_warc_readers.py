"""WARC reading cost: our reader (``pipelines.warc.iter_records``) vs FastWARC's ArchiveIterator.

    python bench/bench_warc_readers.py [--warc PATH] [--repeats 3]

Each variant iterates the whole file in this process and reads what it says; CPU-s are
``time.process_time`` around the loop only (imports excluded), the median of ``--repeats``
interleaved rounds.  Variants:

* ``ours_headers``: records framed, no body read (what a reader of another split pays per record);
* ``ours_extract``: the extract stage's reader call (bodies of the records ``records.want_body``
  wants, content-encoding decoded, capped);
* ``ours_all_bodies``: every record's body read and decoded;
* ``ours_extract_zlib``: ``ours_extract`` with every gzip member read the zlib way, 16 KiB at a
  time (``_CappedReader.member_inflater = None``: warcio's own reader, before ISA-L);
* ``fastwarc_all_bodies``: FastWARC, HTTP headers parsed, every record's payload read;
* ``fastwarc_headers``: FastWARC, HTTP headers parsed, no payload read.

Also printed: whether both readers see the same records at the same offsets with the same ids
(the contract extract's output names and doc ids rest on), and whether ``ours_extract`` yields the
same items, field by field, with ISA-L and with zlib.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.config import load_config  # noqa: E402
from pipelines.records import want_body  # noqa: E402
from pipelines.warc import RawRecord, iter_records, local_opener  # noqa: E402
from pipelines.warc_framing import zlib_members  # noqa: E402

DEFAULT_WARC = Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data")) / "realweb" / "realweb.warc.gz"


def ours(warc: Path, wanted) -> tuple[int, int, list]:
    records, payload, seen = 0, 0, []
    for item in iter_records(local_opener(str(warc)), str(warc), want_body=wanted, max_body_bytes=50_000_000):
        if isinstance(item, RawRecord):
            records += 1
            payload += len(item.body or b"")
            seen.append((item.offset, item.record_id))
    return records, payload, seen


def ours_zlib(warc: Path, wanted) -> tuple[int, int, list]:
    with zlib_members():
        return ours(warc, wanted)


def same_items(warc: Path, wanted) -> bool:
    """``ours_extract`` with ISA-L and with zlib: the same items, field by field."""
    def items():
        return list(iter_records(local_opener(str(warc)), str(warc), want_body=wanted, max_body_bytes=50_000_000))
    with_isal = items()
    with zlib_members():
        return items() == with_isal


def fastwarc(warc: Path, read_payload: bool) -> tuple[int, int, list]:
    from fastwarc.warc import ArchiveIterator

    records, payload, seen = 0, 0, []
    with open(warc, "rb") as fh:
        for rec in ArchiveIterator(fh, parse_http=True, fsspec_args=False):
            records += 1
            if read_payload:
                payload += len(rec.reader.read())
            seen.append((rec.stream_pos, rec.record_id))
    return records, payload, seen


def variants(warc: Path) -> dict:
    extract_wants = want_body(load_config()["extract"])
    return {
        "ours_headers": lambda: ours(warc, lambda r: False),
        "ours_extract": lambda: ours(warc, extract_wants),
        "ours_extract_zlib": lambda: ours_zlib(warc, extract_wants),
        "ours_all_bodies": lambda: ours(warc, lambda r: True),
        "fastwarc_headers": lambda: fastwarc(warc, False),
        "fastwarc_all_bodies": lambda: fastwarc(warc, True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("warcio").setLevel(logging.ERROR)   # "Replacing spaces in URI" noise
    if not args.warc.exists():
        raise SystemExit(f"benchmark input {args.warc} not found (set CORPUS_SHARED_DATA or pass --warc)")
    runs = variants(args.warc)
    for run in runs.values():   # warm-up: imports, page cache
        run()
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    result: dict[str, tuple] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            c0 = time.process_time()
            result[name] = run()
            cpu[name].append(time.process_time() - c0)
    report = {}
    for name in runs:
        records, payload, _ = result[name]
        report[name] = {"cpu_s_median": round(statistics.median(cpu[name]), 3),
                        "cpu_s_runs": [round(c, 3) for c in cpu[name]], "records": records, "payload_bytes": payload}
        print(f"{name:20s} {report[name]['cpu_s_median']:7.3f} CPU-s (runs {report[name]['cpu_s_runs']}), "
              f"{records} records, {payload / 1e6:.1f} MB payload")
    ours_seen, fast_seen = result["ours_headers"][2], result["fastwarc_headers"][2]
    same = ours_seen == fast_seen
    print(f"same records, offsets and ids: {same} ({len(ours_seen)} vs {len(fast_seen)} records"
          + ("" if same else f"; same ids: {[i for _, i in ours_seen] == [i for _, i in fast_seen]}") + ")")
    report["same_offsets_and_ids"] = same
    report["isal_items_equal_zlib_items"] = same_items(args.warc, want_body(load_config()["extract"]))
    print(f"ours_extract, ISA-L vs zlib members: same items field by field: {report['isal_items_equal_zlib_items']}")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
