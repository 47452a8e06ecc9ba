"""Deduplication algorithms, pure Python (no Beam): the Beam wiring is ``pipelines.dedup``.

* ``text``: normalisation, stable line hashes, vectorised word n-gram shingle hashes, Jaccard;
* ``minhash``: datasketch-compatible MinHash signatures, LSH band keys, the S-curve;
* ``lines``: a document's line keys and cutting repeated lines back out of its text;
* ``policy``: which document wins (keep policies as sortable keys), row fingerprints, reasons.

URL normalisation is ``filters.url_normalize``.
"""
