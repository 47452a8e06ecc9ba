"""Language family: ``lang`` (lid.176 code, "und" without letters) and ``lang_score``.

Filter ``language``: a language not in ``language.keep`` (when set), and a top-language
probability below ``language.min_score`` (a missing score counts as 0).
"""
from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa

from filters.family import Condition, Context, Filter, SignalFamily, ThresholdRule


def _setup(cfg: Mapping[str, Any]):
    from filters.language import LanguageIdentifier

    return LanguageIdentifier(cfg["language"]["model_path"])


def _compute(text: str, ctx: Context) -> dict[str, Any]:
    lang, score = ctx.state.identify(text)
    return {"lang": lang, "lang_score": score}


LOW_SCORE = ThresholdRule(
    "language.low_score",
    (Condition("lang_score", "<", "min_score", missing=0.0, kind="frac",
               label="language-ID confidence of the top language", by_language=True),),
    reason=lambda s, t: f"language score {s.get('lang_score') or 0.0:.3f} < {t['min_score']:g} ({s.get('lang')})")


def _check(s: Mapping[str, Any], cfg: Mapping[str, Any], t: Mapping[str, Any]):
    out = []
    if t["keep"] and s.get("lang") not in t["keep"]:
        out.append(("language.not_kept", f"language {s.get('lang')} not in language.keep"))
    return out + LANGUAGE.rule_failures(s, t)


LANGUAGE = Filter("language", rules=(LOW_SCORE,), thresholds_at="language", check=_check)

FAMILY = SignalFamily(
    name="language",
    fields=(pa.field("lang", pa.string()), pa.field("lang_score", pa.float64())),
    compute=_compute,
    setup=_setup,
    config_keys=("language.model_path", "language.keep", "language.min_score"),
    sections=("language",),
    version_keys=("language.model_path",),
    version=lambda cfg: {"lid": cfg["language"]["model_path"]},
    filters=(LANGUAGE,),
)
