"""Fuzz the WARC reader and the record -> outcome path with mutated copies of real records.

    .venv/bin/python bench/fuzz_warc.py --cases 1000 [--seed 0]

Each case takes the first records of ``samples/sample.warc.gz`` (as per-record gzip members, or
decompressed into a plain ``.warc``), damages one place -- bit flips, a cut, a bad
``Content-Length`` (negative, words, 20 digits, past the end, a little off, missing), a spliced
half record / duplicate member / junk, an oversized header line -- and runs every item through
``iter_records`` and ``pipelines.records`` as the extract stage does.  Invariants (a violation is
printed and counted):

- no exception escapes the reader or the outcome functions;
- every item read gets exactly one outcome (kept / dropped / dead_letter), and the reader's own
  count (``ReadStats``) equals the items seen;
- the records before the damaged region, and after it, come out as records (same record id and
  offset), so damage never costs more than the region it is in;
- the Python heap held while reading one case stays under ``MEMORY_BOUND`` (tracemalloc peak).

The mutation code is shared with ``tests/test_fuzz_warc.py``, which draws the same choices from
Hypothesis instead of ``random.Random``.
"""
from __future__ import annotations

import argparse
import gzip
import io
import random
import re
import resource
import sys
import time
import tracemalloc
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.config import load_config  # noqa: E402
from pipelines.html_text import Extracted  # noqa: E402
from pipelines.records import DEAD, DROPPED, KEPT, extract_document, header_outcome, read_error_outcome, \
    want_body  # noqa: E402
from pipelines.warc import ReadError, iter_records, stream_opener  # noqa: E402
from pipelines.warc_framing import DEFAULT_MAX_HEADER_LINE_BYTES, ReadStats  # noqa: E402

SAMPLE = ROOT / "samples" / "sample.warc.gz"
BASE_RECORDS = 16            # records of the sample used as the valid stream
MEMORY_BOUND = 16 * 2**20    # tracemalloc peak per case (a header bomb is up to 3 MB)
KINDS = ("bitflip", "truncate", "content_length", "drop_length", "splice", "header_bomb")
LENGTHS = ("-5", "-1", "abc", "", "9" * 20, "99999999999", "0", "1e3", "+5", " 12 ", "0x10", "१२")


class Chooser:
    """Where a case's random choices come from (``random.Random`` here, Hypothesis in the test)."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options):
        return options[self.integer(0, len(options) - 1)]


@dataclass
class Case:
    kind: str
    gz: bool
    data: bytes
    keep: list[tuple[int, str]] = field(default_factory=list)   # (offset, record id) that must survive


@dataclass
class Result:
    items: int = 0
    escape: str | None = None
    violations: list[str] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    peak_bytes: int = 0


@lru_cache(maxsize=1)
def base_records() -> tuple[bytes, ...]:
    """The first valid records of the sample, uncompressed, each ending with its blank lines."""
    data, out, pos = SAMPLE.read_bytes(), [], 0
    while pos < len(data) and len(out) < BASE_RECORDS:
        inflater = zlib.decompressobj(31)
        try:
            record = inflater.decompress(data[pos:])
        except zlib.error:
            break
        out.append(record)
        pos = len(data) - len(inflater.unused_data)
    return tuple(out)


@lru_cache(maxsize=64)   # the base records; mutated ones pass through
def _gzipped(record: bytes) -> bytes:
    return gzip.compress(record, compresslevel=1, mtime=0)


def _record_id(record: bytes) -> str:
    match = re.search(rb"WARC-Record-ID: (<[^>\r\n]*>)", record)
    return match.group(1).decode() if match else ""


def _set_length(record: bytes, value: str | None) -> bytes:
    if value is None:
        return re.sub(rb"Content-Length: [^\r]*\r\n", b"", record, count=1)
    return re.sub(rb"Content-Length: [^\r]*", b"Content-Length: " + value.encode(), record, count=1)


def _encode(records: list[bytes], gz: bool) -> tuple[list[bytes], list[int]]:
    parts = [_gzipped(r) if gz else r for r in records]
    offsets, at = [], 0
    for part in parts:
        offsets.append(at)
        at += len(part)
    return parts, offsets


def make_case(ch: Chooser) -> Case:
    """One damaged stream and the records that must survive the damage."""
    records = list(base_records()[:ch.integer(3, BASE_RECORDS)])
    gz = bool(ch.integer(0, 1))
    kind = ch.choice(KINDS)
    k = ch.integer(0, len(records) - 1)
    ids = [_record_id(r) for r in records]
    parts, offsets = _encode(records, gz)

    def survivors(before: int, after: int, shift: int = 0) -> list[tuple[int, str]]:
        """Records < before keep their offsets; records > after move by ``shift``."""
        return [(offsets[i], ids[i]) for i in range(min(before, len(records)))] + \
               [(offsets[i] + shift, ids[i]) for i in range(after + 1, len(records))]

    if kind == "bitflip":
        member = bytearray(parts[k])
        for _ in range(ch.integer(1, 3)):
            member[ch.integer(0, len(member) - 1)] ^= 1 << ch.integer(0, 7)
        parts[k] = bytes(member)
        # a gzip member is its own frame; in a plain file a flipped byte can also break the
        # newline that starts the next record
        return Case(kind, gz, b"".join(parts), survivors(k, k if gz else k + 1))
    if kind == "truncate":
        data = b"".join(parts)
        cut = ch.integer(0, len(data) - 1)
        return Case(kind, gz, data[:cut], [(o, i) for o, i, p in zip(offsets, ids, parts) if o + len(p) <= cut])
    if kind in ("content_length", "drop_length"):
        if kind == "drop_length":
            value = None
        elif ch.integer(0, 1):
            value = ch.choice(LENGTHS)
        else:   # a little off in either direction
            true_length = int(re.search(rb"Content-Length: (\d+)", records[k]).group(1))
            value = str(max(0, true_length + ch.choice([-1, 1]) * ch.integer(1, 40)))
        changed = _set_length(records[k], value)
        new = _gzipped(changed) if gz else changed
        shift = len(new) - len(parts[k])
        parts[k] = new
        return Case(f"{kind}:{value!r}" if value is not None and len(value) < 12 else kind, gz,
                    b"".join(parts), survivors(k, k, shift))
    if kind == "splice":
        donor = parts[ch.integer(0, len(parts) - 1)]
        what = ch.choice(("half_record", "duplicate", "junk", "magic_junk"))
        if what == "half_record":
            junk = donor[:ch.integer(1, len(donor) - 1)]
        elif what == "duplicate":
            junk = donor
        elif what == "junk":
            junk = bytes(ch.integer(0, 255) for _ in range(ch.integer(1, 64))) + (b"" if gz else b"\r\n")
        else:
            junk = (b"\x1f\x8b\x08" if gz else b"WARC/1.0\r\n") + bytes(ch.integer(0, 255) for _ in range(ch.integer(0, 64)))
            junk += b"" if gz else b"\r\n"
        data = b"".join(parts[:k]) + junk + b"".join(parts[k:])
        keep = survivors(k, k - 1, len(junk))
        return Case(f"splice:{what}", gz, data, keep)
    # header_bomb: one header line past the default cap, in the WARC or the HTTP headers
    size = ch.integer(DEFAULT_MAX_HEADER_LINE_BYTES + 1, 3_000_000)
    line = b"X-Bomb: " + b"A" * size + b"\r\n"
    where = b"\r\nWARC-Type: " if ch.integer(0, 1) else b"\r\nContent-Type: "
    if where not in records[k]:
        where = b"\r\nWARC-Type: "
    at = records[k].index(where) + 2
    changed = records[k][:at] + line + records[k][at:]
    new = _gzipped(changed) if gz else changed
    shift = len(new) - len(parts[k])
    parts[k] = new
    return Case("header_bomb", gz, b"".join(parts), survivors(k, k, shift))


class _Extractor:
    """Stands in for trafilatura: the reader and the outcome path are under test, not extraction."""

    def extract(self, html: str, url: str, utf8: bytes | None = None) -> Extracted:
        return Extracted(text=" ".join(html[:5000].split()), title=None)


@lru_cache(maxsize=1)
def _extract_cfg() -> dict:
    return load_config()["extract"]


def run_case(case: Case) -> Result:
    """Read the case as the extract stage does and check the invariants."""
    cfg, extractor, result = _extract_cfg(), _Extractor(), Result()
    stats, records = ReadStats(), []
    tracemalloc.start()
    try:
        for item in iter_records(stream_opener(lambda: io.BytesIO(case.data)), "fuzz.warc",
                                 want_body=want_body(cfg),
                                 max_body_bytes=cfg["max_payload_bytes"], stats=stats):
            result.items += 1
            if isinstance(item, ReadError):
                outcome = read_error_outcome(item)
            else:
                records.append(item)
                outcome = header_outcome(item, cfg) or extract_document(item, cfg, extractor)
            if outcome.status not in (KEPT, DROPPED, DEAD) or (outcome.status == DEAD) != (outcome.dead is not None) \
                    or (outcome.status == KEPT) != (outcome.doc is not None):
                result.violations.append(f"inconsistent outcome {outcome.status}/{outcome.reason}")
            result.outcomes[(outcome.status, outcome.reason)] += 1
    except Exception as exc:  # noqa: BLE001 - an escape is what the fuzzer looks for
        result.escape = f"{type(exc).__name__}: {exc!s:.200}"
        return result
    finally:
        result.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if stats.items != result.items or sum(result.outcomes.values()) != result.items:
        result.violations.append(f"reader counted {stats.items}, saw {result.items}, "
                                 f"outcomes {sum(result.outcomes.values())}")
    got = {(r.offset, r.record_id) for r in records}
    lost = [x for x in case.keep if x not in got]
    if lost:
        result.violations.append(f"lost {len(lost)} record(s) outside the damage, first {lost[0]}")
    if result.peak_bytes > MEMORY_BOUND:
        result.violations.append(f"heap peak {result.peak_bytes / 2**20:.1f} MiB")
    return result


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.getLogger("warcio").setLevel(logging.ERROR)   # "Replacing spaces in URI" noise
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()
    kinds, outcomes, failures = Counter(), Counter(), []
    escapes = violations = items = 0
    peak_case = 0
    for n in range(args.cases):
        case = make_case(Chooser(rng))
        kinds[case.kind.split(":")[0]] += 1
        result = run_case(case)
        items += result.items
        outcomes.update(result.outcomes)
        peak_case = max(peak_case, result.peak_bytes)
        if result.escape:
            escapes += 1
            failures.append(f"case {n} {case.kind} gz={case.gz}: ESCAPE {result.escape}")
        if result.violations:
            violations += 1
            failures.append(f"case {n} {case.kind} gz={case.gz}: {'; '.join(result.violations)}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fuzz_warc: {args.cases} cases (seed {args.seed}) in {time.monotonic() - started:.1f}s, "
          f"{items} items read")
    print(f"  mutations:  {dict(sorted(kinds.items()))}")
    print(f"  escapes:    {escapes}")
    print(f"  violations: {violations}")
    for line in failures[:20]:
        print(f"    {line}")
    print("  outcomes by reason:")
    for (status, reason), count in sorted(outcomes.items()):
        print(f"    {status:<12} {reason:<28} {count}")
    print(f"  peak heap per case (tracemalloc): {peak_case / 2**20:.1f} MiB; process peak RSS: {rss:.0f} MiB")
    return 1 if escapes or violations else 0


if __name__ == "__main__":
    sys.exit(main())
