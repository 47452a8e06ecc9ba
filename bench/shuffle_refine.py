"""Bytes through every GroupByKey of a refine run on the local runner: how many full-row passes.

    python bench/shuffle_refine.py --extracted DIR [--config FILE] [--dedup/--no-dedup]

Builds refine's graph over the extracted Parquet with each ``GroupByKey`` (also those inside
``Reshuffle``, ``CoGroupByKey`` and ``Combine*``) preceded by a pass-through step that adds the
pickled size of every element to a Beam counter named after the GroupByKey's full label; runs it on
one worker and prints the bytes per GroupByKey, their total and that total in units of the mean
pickled input row (``full-row passes``); also the bytes as the runner's coder for the GroupByKey's
input type encodes them (``coded``: a declared ``Tuple[bytes, str]`` gets the bytes and string
coders, an undeclared type ``FastPrimitivesCoder``) and the elements per input row.
Pickle is a stand-in for the runner's coder (Beam pickles dicts too; a packed bytes value costs its
length plus a few bytes either way); combiner lifting on a real runner shrinks the Combine*
entries, which are tiny here anyway.  Also prints the total per input document: the cost model's
``refine_shuffle_bytes_per_doc`` (configs/cost.yaml).
"""
from __future__ import annotations

import argparse
import contextlib
import pickle
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _has_row(value) -> bool:
    """True when ``value`` holds a document row (a dict with its ``text``), however nested, also
    inside the ``pipelines.packed`` value of a writer's ``(shard, packed)`` element, where a
    ``("row", ...)`` or ``("removed", ...)`` value is a row even when ``RowCodec``-encoded (other
    bytes -- band keys, node ids, signatures -- are never unpacked)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] in ("row", "removed"):
        return True
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int)
            and isinstance(value[1], bytes)):
        from pipelines.packed import PackedValueError, unpack

        try:
            return _has_row(unpack(value[1]))
        except PackedValueError:
            return False
    if isinstance(value, dict):
        return "text" in value
    if isinstance(value, (tuple, list)):
        return any(_has_row(v) for v in value)
    return False


@contextlib.contextmanager
def count_shuffles():
    """While active, every GroupByKey applied (also inside Reshuffle, CoGroupByKey, Combine*) is
    preceded by a step that adds, under the GroupByKey's full label, the pickled size of each
    element to the counter ``shuffle_bytes``, the element to ``shuffle_elements`` and, when it
    holds a document row, the row to ``shuffle_rows`` (see ``shuffle_counts``)."""
    import apache_beam as beam
    from apache_beam.pipeline import Pipeline

    original = Pipeline.apply

    def apply(self, transform, pvalueish=None, label=None):
        # Pipeline.apply with a label calls itself again without one: count on that call.
        if label is None and isinstance(transform, beam.GroupByKey) and isinstance(pvalueish, beam.PCollection):
            parent = self._current_transform().full_label
            name = f"{parent}/{transform.label}".lstrip("/")
            counters = [beam.metrics.Metrics.counter(ns, name)
                        for ns in ("shuffle_bytes", "shuffle_elements", "shuffle_rows", "shuffle_coded")]
            coder = kv_coder(pvalueish.element_type)

            def count(element, counters=counters, coder=coder):
                size, elements, rows, coded = counters
                size.inc(len(pickle.dumps(element, protocol=pickle.HIGHEST_PROTOCOL)))
                coded.inc(len(coder.encode(element)))
                elements.inc()
                if _has_row(element):
                    rows.inc()
                return element

            pvalueish = original(self, beam.Map(count), pvalueish, transform.label + "Bytes")
        return original(self, transform, pvalueish, label)

    Pipeline.apply = apply
    try:
        yield
    finally:
        Pipeline.apply = original


def kv_coder(element_type):
    """The coder a runner gives a GroupByKey input of ``element_type``: a tuple coder of the key's
    and the value's coders (``FastPrimitivesCoder`` for each where the type is not declared)."""
    from apache_beam import coders
    from apache_beam.typehints.native_type_compatibility import convert_to_beam_type

    coder = coders.registry.get_coder(convert_to_beam_type(element_type))
    if not isinstance(coder, coders.TupleCoder):
        coder = coders.TupleCoder([coders.FastPrimitivesCoder(), coders.FastPrimitivesCoder()])
    return coder


def shuffle_counts(result) -> dict[str, dict[str, int]]:
    """{GroupByKey label: {"bytes", "elements", "rows", "coded"}} from a run built under ``count_shuffles``."""
    from apache_beam.metrics.metric import MetricsFilter

    out: dict[str, dict[str, int]] = {}
    for ns in ("shuffle_bytes", "shuffle_elements", "shuffle_rows", "shuffle_coded"):
        for m in result.metrics().query(MetricsFilter().with_namespace(ns))["counters"]:
            out.setdefault(m.key.metric.name, {"bytes": 0, "elements": 0, "rows": 0, "coded": 0})[ns.split("_")[1]] = \
                m.committed
    return out


def mean_row_bytes(files: list[str]) -> float:
    from pipelines.refine_io import read_parquet_rows

    sizes = [len(pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL))
             for f in files for kind, v in read_parquet_rows(f) if kind == "row"]
    return sum(sizes) / max(1, len(sizes)), len(sizes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extracted", required=True)
    ap.add_argument("--config", default=None)
    ap.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    from pipelines import refine
    from pipelines.config import load_config
    from pipelines.inputs import list_inputs
    from pipelines.runner import new_pipeline

    cfg = load_config(args.config, overrides={"refine": {"dedup": args.dedup}})
    files = list_inputs(args.extracted)
    row_bytes, n = mean_row_bytes(files)
    out = tempfile.mkdtemp(prefix="shuffle-refine-")
    with count_shuffles():
        pipeline = new_pipeline([], workers=1)
        refine.build(pipeline, files, out, cfg, refine.summary_meta(cfg, args.extracted, None))
    result = pipeline.run()
    result.wait_until_finish()
    counts = shuffle_counts(result)
    total = rows_total = 0
    print(f"{n} input rows, mean pickled row {row_bytes:.0f} bytes")
    print(f"{'bytes':>12} {'coded':>12} {'elements':>9} {'rows':>6} {'rows-eq':>8}  GroupByKey")
    coded_total = 0
    for name, c in sorted(counts.items(), key=lambda kv: -kv[1]["bytes"]):
        total += c["bytes"]
        coded_total += c["coded"]
        rows_total += c["rows"]
        print(f"{c['bytes']:>12} {c['coded']:>12} {c['elements']:>9} {c['rows']:>6} "
              f"{c['bytes'] / row_bytes / max(1, n):>8.3f}  {name}")
    print(f"total {total} bytes = {total / row_bytes / max(1, n):.2f} full-row passes "
          f"({total / max(1, n):.0f} bytes per input row); document rows through a GroupByKey: {rows_total} "
          f"({rows_total / max(1, n):.2f} per input row)")
    print(f"as the runner's coders encode them (the PCollections' declared types, else FastPrimitivesCoder): "
          f"{coded_total} bytes ({coded_total / max(1, n):.0f} per input row); elements through a GroupByKey: "
          f"{sum(c['elements'] for c in counts.values())} "
          f"({sum(c['elements'] for c in counts.values()) / max(1, n):.1f} per input row)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
