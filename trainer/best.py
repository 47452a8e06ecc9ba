"""Keep-best and early stopping on the validation loss.

Contract:
* Every periodic evaluation is passed to ``BestTracker.update(step, val_loss)``.  An eval is a new
  best when it beats the best so far by more than ``early_stop_min_delta`` (the first eval always
  is).  With ``keep_best`` the trainer then writes ``RUN/best.pt``: the model weights, configs and
  tokenizer identity of that step (no optimiser state, so it is not a resume point).
* With ``early_stop_patience = P > 0`` training stops after P consecutive evals without a new best;
  ``ckpt.pt`` is written at the step where it stopped, and a resumed run that had stopped early
  does nothing.  The tracker's state travels in ``ckpt.pt`` (key ``best``), so patience counts
  across ``--stop-after`` / ``--resume``.
* A fresh (non-resumed) run deletes a ``best.pt`` left by an earlier run in the same directory,
  so ``eval``/``sample``/``export`` (which prefer ``best.pt``, see ``checkpoint.model_file``) never
  read a stale model.
"""
from __future__ import annotations

import math
from pathlib import Path

from . import checkpoint


class BestTracker:
    def __init__(self, patience: int = 0, min_delta: float = 0.0, state: dict | None = None):
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        s = dict(state or {})
        self.best_step: int | None = s.get("step")
        self.best_loss: float | None = s.get("val_loss")
        self.first_step: int | None = s.get("first_step")
        self.first_loss: float | None = s.get("first_val_loss")
        self.since_best: int = int(s.get("evals_since_best", 0))
        self.stopped: bool = bool(s.get("early_stopped", False))

    def update(self, step: int, val_loss: float) -> bool:
        """Record one eval; True when it is a new best."""
        if self.first_loss is None:
            self.first_step, self.first_loss = step, float(val_loss)
        improved = math.isfinite(val_loss) and (
            self.best_loss is None or val_loss < self.best_loss - self.min_delta)
        if improved:
            self.best_step, self.best_loss, self.since_best = step, float(val_loss), 0
        else:
            self.since_best += 1
            if self.patience and self.since_best >= self.patience:
                self.stopped = True
        return improved

    def to_dict(self) -> dict:
        return {"step": self.best_step, "val_loss": self.best_loss, "first_step": self.first_step,
                "first_val_loss": self.first_loss, "evals_since_best": self.since_best,
                "early_stopped": self.stopped}

    def summary(self, out_dir: Path, keep_best: bool) -> dict:
        if self.best_loss is None:
            return {"early_stopped": self.stopped}
        best_file = Path(out_dir) / checkpoint.BEST_NAME
        return {"best_step": self.best_step, "best_val_loss": self.best_loss,
                "first_eval_step": self.first_step, "first_val_loss": self.first_loss,
                "early_stopped": self.stopped,
                "best_checkpoint": str(best_file) if keep_best and best_file.is_file() else None}


def remove_stale(out_dir: Path) -> None:
    (Path(out_dir) / checkpoint.BEST_NAME).unlink(missing_ok=True)


def format_line(s: dict) -> str | None:
    """The summary's last line: which checkpoint the run ends on and whether val loss improved."""
    if s.get("best_val_loss") is None:
        return None
    best, first = s["best_val_loss"], s["first_val_loss"]
    verdict = (f"improved {first - best:.4f} on the first eval ({first:.4f} at step {s['first_eval_step']})"
               if best < first else f"no better than the first eval ({first:.4f} at step "
               f"{s['first_eval_step']})")
    where = (s["best_checkpoint"] + " (eval, sample and export use it)" if s.get("best_checkpoint")
             else "not saved (keep_best is off); ckpt.pt holds the last step")
    stop = "; stopped early (no new best within early_stop_patience evals)" if s.get("early_stopped") else ""
    return (f"  best checkpoint   step {s['best_step']}: val loss {best:.4f} "
            f"(ppl {math.exp(min(best, 700)):.2f}), {verdict}{stop}\n"
            f"                    {where}")
