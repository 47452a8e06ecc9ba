"""The dedup stage and the reusable ``Deduplicate`` transform (URL -> MinHash -> lines).

``python -m pipelines dedup --input DIR_OF_PARQUET --output DIR [--config FILE] [Beam options]``
reads Parquet with at least ``url`` and ``text`` and writes

* ``DIR/part-NNNNN-of-MMMMM.parquet``: kept documents (+ ``dup_cluster_id``, ``dup_cluster_size``,
  ``dup_lines_removed``; ``text`` without the removed lines);
* ``DIR/removed/part-*.parquet``: removed documents with ``dedup_reason`` (url | line-too-short |
  minhash | duplicate-doc-id) and ``dup_kept_doc_id``;
* ``DIR/rejected/part-00000-of-00001.jsonl``: rows that could not be processed (dead letters, the
  one shape of ``pipelines.writers.dead_letter``);
* ``DIR/summary.json``.

``Deduplicate(cfg)`` is the same logic as a PTransform over document dicts for other stages
(refine): ``docs | Deduplicate(cfg)`` -> {"kept", "removed", "rejected", "stats"}.

Modules: ``transform`` (``Deduplicate``, the join back to the rows), ``url``, ``minhash``,
``lines``, ``components`` (connected components), ``common`` (stubs, stats), ``stage`` (the
CLI stage: read, write, summary).  The algorithms themselves are in ``filters.dedup``.
"""
from pipelines.dedup.stage import (STAGE_OUTPUTS, add_arguments, build, list_inputs, output_schemas,
                                   print_summary, read_schema, run, summarize)
from pipelines.dedup.transform import (ADDED_COLUMNS, KEPT_FIELDS, REMOVED_FIELDS, STEPS, Deduplicate,
                                       _prepare)

__all__ = ["ADDED_COLUMNS", "KEPT_FIELDS", "REMOVED_FIELDS", "STAGE_OUTPUTS", "STEPS", "Deduplicate",
           "_prepare", "add_arguments", "build", "list_inputs", "output_schemas", "print_summary",
           "read_schema", "run", "summarize"]
