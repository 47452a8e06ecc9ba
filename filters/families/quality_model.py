"""Quality-model family: ``quality_model_score``, the fastText classifier's probability of the
positive label (null when no model is configured).  Filter ``quality_model``: score below
``quality_model.min_score``."""
from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa

from filters.family import Condition, Context, Filter, SignalFamily, ThresholdRule


def _setup(cfg: Mapping[str, Any]):
    qm = cfg["quality_model"]
    if not qm["model_path"]:
        return None
    from filters.quality_model import QualityModel

    return QualityModel(qm["model_path"], qm["positive_label"])


def _compute(text: str, ctx: Context) -> dict[str, Any]:
    return {"quality_model_score": ctx.state.score(text) if ctx.state else None}


SCORE = ThresholdRule(
    "quality_model.score",
    (Condition("quality_model_score", "<", "min_score", kind="frac", label="quality-model score"),),
    reason=lambda s, t: f"quality model score {s['quality_model_score']:.3f} < {t['min_score']:g}")

FAMILY = SignalFamily(
    name="quality_model",
    fields=(pa.field("quality_model_score", pa.float64()),),   # null: no model configured
    compute=_compute,
    setup=_setup,
    config_keys=("quality_model.model_path", "quality_model.positive_label", "quality_model.min_score"),
    sections=("quality_model",),
    version_keys=("quality_model.model_path", "quality_model.positive_label"),
    version=lambda cfg: {"quality_model": [cfg["quality_model"]["model_path"],
                                           cfg["quality_model"]["positive_label"]]},
    filters=(Filter("quality_model", rules=(SCORE,), thresholds_at="quality_model"),),
)
