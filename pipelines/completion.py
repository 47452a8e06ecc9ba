"""Completion manifests: "this snapshot has been processed with this config" (``_COMPLETE.json``).

A scheduled run processes each Common Crawl snapshot once.  It looks for
``OUTPUT/<snapshot>/_COMPLETE.json`` and stops early when the manifest names the same config hash;
otherwise it removes any manifest first (so a run that fails half-way can never leave a manifest
next to a mix of old and new files), runs every stage with overwrite, and writes the manifest
last.  Everything here goes through Beam's FileSystems (local, gs://, s3://) and never imports a
pipeline stage, so the decision logic is testable without running Beam.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Iterable, Mapping, Sequence

from pipelines import outputs, stages

log = logging.getLogger("pipelines.completion")

MANIFEST_NAME = "_COMPLETE.json"
MANIFEST_VERSION = 1
# The stages `pipelines all` chains, in order, and the sub-directory of OUTPUT/<snapshot>/ each
# writes: both from the stage registry.
STAGE_ORDER = stages.CHAIN
STAGE_DIRS = stages.SNAPSHOT_DIRS


def snapshot_dir(output: str, snapshot: str) -> str:
    return outputs.join(output, snapshot)


def manifest_path(output: str, snapshot: str) -> str:
    return outputs.join(snapshot_dir(output, snapshot), MANIFEST_NAME)


def stage_dir(output: str, snapshot: str, stage: str) -> str:
    return outputs.join(snapshot_dir(output, snapshot), STAGE_DIRS[stage])


def parse_stages(spec: str | Sequence[str]) -> list[str]:
    """``"extract,refine,tokenize"`` -> the stages in pipeline order; unknown/duplicate/out-of-order
    names are a ValueError naming ``--stages``.  A subset must be contiguous: each stage reads the
    output of the one before it in OUTPUT/<snapshot>/."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise ValueError("--stages is empty; give e.g. extract,refine,tokenize")
    unknown = [n for n in names if n not in STAGE_ORDER]
    if unknown:
        raise ValueError(f"--stages: unknown stage {unknown[0]!r}; choose from {', '.join(STAGE_ORDER)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--stages: a stage is named twice in {','.join(names)}")
    positions = [STAGE_ORDER.index(n) for n in names]
    if positions != sorted(positions) or positions != list(range(positions[0], positions[0] + len(positions))):
        raise ValueError(f"--stages {','.join(names)}: stages must be contiguous and in the order "
                         f"{','.join(STAGE_ORDER)}")
    return names


def run_config_hash(cfg: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """Hash of everything that shapes the outputs: the merged config and the run's parameters
    (max_warcs, source, stages, tokenizer identity).  The snapshot id is not in it: it is the
    directory name."""
    blob = json.dumps({"config": cfg, "params": params}, sort_keys=True, separators=(",", ":"),
                      default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def read_manifest(output: str, snapshot: str) -> dict | None:
    """The manifest, or None when there is none or it cannot be parsed (treated as not done)."""
    from apache_beam.io.filesystems import FileSystems

    path = manifest_path(output, snapshot)
    if not FileSystems.exists(path):
        return None
    try:
        manifest = outputs.read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable completion manifest %s (%s); the snapshot will be redone", path, exc)
        return None
    return manifest if isinstance(manifest, dict) else None


def is_complete(output: str, snapshot: str, config_hash: str) -> bool:
    manifest = read_manifest(output, snapshot)
    return bool(manifest) and manifest.get("snapshot") == snapshot and manifest.get("config_hash") == config_hash


def clear_completion(output: str, snapshot: str) -> bool:
    """Remove the manifest before a (re)run starts; True when there was one."""
    from apache_beam.io.filesystems import FileSystems

    path = manifest_path(output, snapshot)
    if FileSystems.exists(path):
        FileSystems.delete([path])
        return True
    return False


def list_output_files(root: str) -> list[str]:
    """Every file under ``root`` (relative paths, sorted), except the manifest itself."""
    from apache_beam.io.filesystems import FileSystems

    prefix = root.rstrip("/") + "/"
    # "**" matches across directory levels on every Beam filesystem (fnmatch semantics).
    found = FileSystems.match([prefix + "**"])[0].metadata_list
    rel = sorted({m.path[len(prefix):] if m.path.startswith(prefix) else m.path for m in found})
    # The run's own lock (outputs.LOCK_NAME) is held while this lists and removed right after.
    return [r for r in rel if r and r not in (MANIFEST_NAME, outputs.LOCK_NAME) and not _is_temporary(r)]


def _is_temporary(rel: str) -> bool:
    return any(part.startswith(".") and ".tmp-" in part for part in rel.split("/"))


def build_manifest(*, snapshot: str, config_hash: str, input_warcs: Sequence[str], stages: Sequence[str],
                   stage_summaries: Mapping[str, Mapping[str, Any]], files: Iterable[str],
                   params: Mapping[str, Any]) -> dict:
    return {
        "manifest_version": MANIFEST_VERSION,
        "snapshot": snapshot,
        "config_hash": config_hash,
        "params": dict(params),
        "stages": list(stages),
        "input_warcs": list(input_warcs),
        "counts": {stage: summary_counts(stage, s) for stage, s in stage_summaries.items()},
        "files": sorted(files),
    }


def summary_counts(stage: str, summary: Mapping[str, Any]) -> dict:
    """The few numbers of a stage summary worth keeping in the manifest."""
    if stage == "extract":
        keys = ("input_files", "records_read", "kept", "dropped", "dead_lettered")
        return {k: summary.get(k) for k in keys}
    if stage == "refine":
        keys = ("input_files", "documents_in", "kept", "removed", "rejected", "removed_by_dedup")
        return {k: summary.get(k) for k in keys if k in summary}
    if stage == "tokenize":
        splits = summary.get("splits") or {}
        return {"input_files": summary.get("input_files"), "documents_read": summary.get("documents_read"),
                "tokens": {name: info.get("tokens") for name, info in sorted(splits.items())},
                "shards": {name: info.get("shards") for name, info in sorted(splits.items())}}
    return {}


def write_completion(output: str, snapshot: str, manifest: Mapping[str, Any]) -> str:
    """Write the manifest atomically (temporary name + rename); returns its path."""
    if manifest.get("snapshot") != snapshot:
        raise ValueError(f"manifest is for {manifest.get('snapshot')!r}, not {snapshot!r}")
    path = manifest_path(output, snapshot)
    outputs.write_json(path, dict(manifest))
    return path
