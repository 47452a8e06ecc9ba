"""Peak memory of decompression bombs read through the real extract decode path.

    python bench/bench_bombs.py [--sizes-mb 200,1200,4500] [--encodings gzip,deflate,br,zstd]
                                [--cap BYTES]

For each encoding and inflated size it builds a bomb (zeros compressed a MiB at a time, so the
bench never holds the inflated data), writes it as the body of one HTTP response in a
``.warc.gz`` next to a normal page, and reads that file in a fresh child process through
``pipelines.warc.iter_records`` + ``pipelines.records.header_outcome`` with the cap from
``extract.max_decoded_bytes`` (configs/defaults/extract.yaml, or ``--cap``).  It prints the
compressed size, the outcome, the child's peak RSS (``ru_maxrss``) and the growth over a
baseline child that reads only a normal page.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MB = 1 << 20
PAGE = b"<html><body><p>" + b"A normal page with some text. " * 200 + b"</p></body></html>"

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pipelines.config import load_config
from pipelines.records import header_outcome
from pipelines.warc import RawRecord, iter_records, local_opener
path, cap = sys.argv[2], int(sys.argv[3])
cfg = load_config()["extract"]
started = time.monotonic()
outcomes = []
for r in iter_records(local_opener(path), path, want_body=lambda r: r.rec_type == "response",
                      max_body_bytes=cfg["max_payload_bytes"], max_decoded_bytes=cap):
    if isinstance(r, RawRecord) and r.rec_type == "response":
        o = header_outcome(r, cfg)
        outcomes.append(o.reason if o else "to_extraction")
print(json.dumps({"peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": round(time.monotonic() - started, 2), "outcomes": outcomes}))
"""


def build_bomb(encoding: str, inflated: int) -> bytes:
    block = b"\0" * MB
    if encoding == "br":
        import brotli
        comp = brotli.Compressor(quality=5)
        return b"".join(comp.process(block) for _ in range(inflated // MB)) + comp.finish()
    if encoding == "zstd":
        import zstandard
        comp = zstandard.ZstdCompressor(level=3).compressobj()
        return b"".join(comp.compress(block) for _ in range(inflated // MB)) + comp.flush()
    comp = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return b"".join(comp.compress(block) for _ in range(inflated // MB)) + comp.flush()


def write_warc(path: Path, bodies: list[tuple[str, bytes, str | None]]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for name, body, encoding in bodies:
            headers = [("Content-Type", "text/html")] + ([("Content-Encoding", encoding)] if encoding else [])
            writer.write_record(writer.create_warc_record(
                f"https://example.org/{name}", "response", payload=io.BytesIO(body),
                http_headers=StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")))


def measure(path: Path, cap: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(path), str(cap)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="200,1200,4500")
    parser.add_argument("--encodings", default="gzip,deflate,br,zstd")
    parser.add_argument("--cap", type=int, default=None, help="default: extract.max_decoded_bytes")
    args = parser.parse_args()
    from pipelines.config import load_config
    cap = args.cap or int(load_config()["extract"]["max_decoded_bytes"])
    with tempfile.TemporaryDirectory() as tmp:
        base_path = Path(tmp) / "baseline.warc.gz"
        write_warc(base_path, [("page", PAGE, None)])
        base = measure(base_path, cap)
        print(f"cap (max_decoded_bytes) = {cap:,} bytes")
        print(f"{'case':<22}{'body bytes':>12}  {'outcome':<20}{'peak RSS MiB':>13}{'growth MiB':>12}{'s':>7}")
        print(f"{'baseline page':<22}{len(PAGE):>12,}  {base['outcomes'][0]:<20}"
              f"{base['peak_rss_kib'] / 1024:>13.1f}{0:>12.1f}{base['seconds']:>7}")
        # first the largest body that is still kept (zeros just under the cap): the worst case for
        # a page that passes; then the bombs
        cases = [("gzip", cap // MB, "gzip (under cap)")]
        cases += [(e, int(s), e) for e in args.encodings.split(",") for s in args.sizes_mb.split(",")]
        for encoding, size, label in cases:
            started = time.monotonic()
            body = build_bomb(encoding, size * MB)
            built = time.monotonic() - started
            path = Path(tmp) / f"{encoding}-{size}.warc.gz"
            write_warc(path, [("bomb", body, encoding), ("page", PAGE, None)])
            got = measure(path, cap)
            growth = (got["peak_rss_kib"] - base["peak_rss_kib"]) / 1024
            print(f"{label + ' ' + str(size) + ' MiB':<22}{len(body):>12,}  {got['outcomes'][0]:<20}"
                  f"{got['peak_rss_kib'] / 1024:>13.1f}{growth:>12.1f}{got['seconds']:>7}"
                  f"   (next record: {got['outcomes'][1]}; bomb built in {built:.0f}s)", flush=True)
            path.unlink()

if __name__ == "__main__":
    main()
