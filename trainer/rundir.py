"""The run directory around the checkpoint: who may write into it, and ``metrics.jsonl``.

* A directory holds an earlier run when it has a checkpoint (``*.pt``), ``summary.json`` or a
  non-empty ``metrics.jsonl``.  ``train`` refuses to write into it unless told ``resume``
  (continue from ``ckpt.pt``) or ``overwrite`` (start again: the old checkpoints and summary are
  deleted and the metrics emptied).  Checked on every rank before any process writes.
* Temporary files of atomic writes left by a killed process are deleted on the next start
  (``checkpoint.remove_stale_temps``).
* ``metrics.jsonl`` is appended one JSON object per line.  A kill during a write leaves a torn
  last line: resuming drops it with a warning.  An unreadable line anywhere else is an error
  naming the file and the line, before anything is trained or rewritten.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import checkpoint

METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"


class RunDirError(ValueError):
    """The run directory cannot be used as asked; the message names it (or the bad file)."""


def earlier_run_files(out_dir: Path) -> list[str]:
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = sorted(p.name for p in out_dir.glob("*.pt") if p.is_file())
    if (out_dir / SUMMARY_NAME).is_file():
        found.append(SUMMARY_NAME)
    metrics = out_dir / METRICS_NAME
    if metrics.is_file() and metrics.stat().st_size > 0:
        found.append(METRICS_NAME)
    return found


def check_run_dir(out_dir: Path, resume: bool, overwrite: bool) -> None:
    """Raise RunDirError unless training into ``out_dir`` is what was asked for.  Writes nothing."""
    out_dir = Path(out_dir)
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other")
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"--out {out_dir} exists and is not a directory")
    if resume:
        read_metrics(out_dir / METRICS_NAME)  # a damaged log fails here, before any work
        return
    found = earlier_run_files(out_dir)
    if found and not overwrite:
        raise RunDirError(f"{out_dir} already holds a run ({', '.join(found)}): pass --resume to "
                          "continue it or --overwrite to replace it")


def start_run_dir(out_dir: Path, resume: bool) -> list[str]:
    """On the main rank, before anything is written: delete temporaries of a killed run and, for a
    fresh start, the files of the run being replaced.  Returns what was deleted."""
    out_dir = Path(out_dir)
    removed = checkpoint.remove_stale_temps(out_dir)
    if not resume:
        for name in earlier_run_files(out_dir):
            if name != METRICS_NAME:  # MetricsLog empties it
                (out_dir / name).unlink(missing_ok=True)
                removed.append(name)
    return removed


def read_metrics(path: Path) -> tuple[list[tuple[str, dict]], bool]:
    """(line text, record) of every line of a metrics file, and whether a torn last line was
    dropped.  Blank lines are skipped.  Raises RunDirError naming the file and line otherwise."""
    path = Path(path)
    if not path.is_file():
        return [], False
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read the metrics log ({exc})") from None
    out: list[tuple[str, dict]] = []
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        try:
            rec = json.loads(ln)
            if not isinstance(rec, dict) or not isinstance(rec.get("step", 0), int):
                raise ValueError("not a metrics record")
        except ValueError as exc:
            if i == last:
                return out, True
            raise RunDirError(f"{path}:{i + 1}: unreadable metrics line ({exc}); only a torn last "
                              "line is dropped automatically") from None
        out.append((ln, rec))
    return out, False


class MetricsLog:
    """JSONL metrics (rank 0), plus TensorBoard when it is installed."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        self.path = Path(run_dir) / METRICS_NAME
        if resume_step is not None and self.path.exists():
            records, torn = read_metrics(self.path)
            if torn:
                print(f"warning: {self.path}: dropped a torn last line (a write was interrupted)",
                      file=sys.stderr)
            # drop records from after the checkpoint: those steps are about to be redone
            keep = [ln for ln, rec in records if rec.get("step", 0) <= resume_step]
            checkpoint.atomic_write_bytes(self.path, lambda f: f.write(
                "".join(ln + "\n" for ln in keep).encode("utf-8")))
        elif resume_step is None:
            self.path.write_text("")
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        except Exception:  # tensorboard is optional
            self.tb = None

    def write(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if k not in ("type", "step") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{record['type']}/{k}", v, record["step"])

    def close(self):
        if self.tb is not None:
            self.tb.close()
