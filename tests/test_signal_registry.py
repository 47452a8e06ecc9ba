"""The signal registry (filters/registry.py, filters/families/): one declaration per family.

* The stored schema, ``signals_version`` and the filter names are derived from the families and
  equal what the hand-kept lists gave before the registry (column order, hash formula).
* Every declared version key changes ``signals_version``; thresholds do not.
* The config and the declarations are checked against each other (a declared key missing from the
  config, a config key no family reads: both errors naming the key).
* ``Decider`` (row by row) and ``decisions.evaluate_columns`` (numpy, used by the report) agree on
  every threshold rule, under the default config and a changed one, over seeded random rows.
* A family registered in a test (docs/architecture.md's walk-through) is in the schema, computed,
  filterable by its threshold, and visible to the report's what-if tables; nothing is left
  registered afterwards.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from filters import decisions, quality, registry, signals
from filters.decisions import Decider
from filters.family import Condition, Context, Filter, SignalFamily, ThresholdRule, get_path
from settings import load_config

# The column order of the hand-kept SIGNAL_FIELDS list before the registry (Parquet files written
# since then must keep it).
BEFORE = ["signals_version", "lang", "lang_score", *quality.SCALAR_MEASURES, *quality.LINE_MEASURES,
          "quality_model_score", "tox_word_hits", "tox_word_ratio", "tox_lines", "tox_wordlist", "tox_clf_frac",
          "tox_clf_max", "tox_clf_lines", "url_blocked_domain", "pii_counts", "pii_total", "optout_noai",
          "optout_noimageai", "optout_noindex", "optout_tdm", "optout_detail"]


def hand_kept_version(cfg) -> str:
    """The signals_version formula as it was written out by hand before the registry."""
    tox = cfg["toxicity"]
    shaping = {
        "revision": registry.SIGNALS_REVISION, "lid": cfg["language"]["model_path"],
        "policy_phrases": list(cfg["quality"]["policy_phrases"]), "max_word_chars": cfg["quality"]["max_word_chars"],
        "quality_model": [cfg["quality_model"]["model_path"], cfg["quality_model"]["positive_label"]],
        "toxicity": {k: tox[k] for k in ("wordlists", "wordlists_always", "classifier", "classifier_model",
                                         "classifier_label", "classifier_languages", "url_blocklist")},
        "consent_agents": list((cfg.get("consent") or {}).get("agents") or []),
        "pii": [True, cfg.get("pii", {}).get("placeholders"), cfg.get("pii", {}).get("phone_regions_by_language")],
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_schema_and_filter_names_are_what_the_hand_kept_lists_were():
    assert [f.name for f in registry.signal_fields()] == BEFORE
    assert registry.signal_names() == BEFORE
    types = {f.name: f.type for f in registry.signal_fields()}
    assert types["line_flags"] == pa.list_(pa.uint8()) and types["pii_counts"] == pa.map_(pa.string(), pa.int32())
    assert types["q_lorem_ipsum"] == pa.bool_() and types["q_words"] == pa.int64()
    assert set(decisions.filter_names()) == {"url_blocklist", "consent", "language", "quality", "quality_model",
                                      "toxicity_words", "toxicity_classifier"}
    assert decisions.audited_filters() == ("toxicity_words", "toxicity_classifier", "url_blocklist")


CHANGED = [
    {},
    {"toxicity": {"wordlists": "/x", "wordlists_always": ["en"], "classifier": "none", "url_blocklist": "/b"}},
    {"pii": {"placeholders": {"email": None}}, "consent": {"agents": []}},
    {"quality": {"max_word_chars": 50, "policy_phrases": ["x"]}, "quality_model": {"positive_label": "__label__x"}},
    {"language": {"model_path": "/m.bin"}, "toxicity": {"classifier_languages": ["en", "de"]}},
]


@pytest.mark.parametrize("overrides", CHANGED, ids=range(len(CHANGED)))
def test_signals_version_is_the_hand_kept_hash(overrides):
    cfg = load_config(overrides=overrides)
    assert signals.signals_version(cfg) == hand_kept_version(cfg)


def _other(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, "zz"]
    if isinstance(value, dict):
        return {**value, "zz": None} if value else {"zz": None}
    return "changed"


def _set(cfg: dict, dotted: str, value: Any) -> dict:
    out = copy.deepcopy(cfg)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return out


def test_every_version_key_changes_signals_version_and_thresholds_do_not():
    cfg = load_config()
    base = signals.signals_version(cfg)
    for fam in registry.families():
        for key in fam.version_keys:
            assert signals.signals_version(_set(cfg, key, _other(get_path(cfg, key)))) != base, (fam.name, key)
        for key in set(fam.config_keys) - set(fam.version_keys):
            assert signals.signals_version(_set(cfg, key, _other(get_path(cfg, key)))) == base, (fam.name, key)
    for flt in registry.filters().values():   # every threshold a rule reads is outside the hash
        for rule in flt.rules:
            for c in rule.conditions:
                path = ".".join(flt.threshold_path(c.key))
                assert signals.signals_version(_set(cfg, path, _other(get_path(cfg, path)))) == base, path


def test_config_and_declarations_are_checked_against_each_other():
    cfg = load_config()
    registry.check_config(cfg)
    undeclared = _set(cfg, "toxicity.unread_knob", 3)
    with pytest.raises(ValueError, match="'toxicity.unread_knob': no signal family reads it"):
        registry.check_config(undeclared)
    missing = copy.deepcopy(cfg)
    del missing["quality_model"]["min_score"]
    with pytest.raises(ValueError, match="reads config key 'quality_model.min_score'"):
        Decider(missing)
    with pytest.raises(ValueError, match="unknown key 'toxicity.unread_knob'"):
        load_config(overrides={"toxicity": {"unread_knob": 3}})   # users still cannot add keys
    with pytest.raises(ValueError, match="unknown filter 'sentiment'"):
        Decider(_set(cfg, "refine.filters", ["language", "sentiment"]))
    with pytest.raises(ValueError, match="quality.filters: unknown group 'c5'"):
        Decider(_set(cfg, "quality.filters", ["c4", "c5"]))


# ------------------------------------------------------------------------------ row by row vs columns
LANGS = ["en", "de", "zh", "th", "ja", None, "und"]


def random_row(rng: random.Random) -> dict:
    def maybe(value, p=0.1):
        return None if rng.random() < p else value

    n_lines = rng.randint(0, 12)
    row: dict[str, Any] = {"lang": rng.choice(LANGS), "lang_score": maybe(rng.random())}
    for name, kind in quality.SCALAR_MEASURES.items():
        row[name] = {"int": lambda: rng.randint(0, 400), "float": lambda: rng.random() * rng.choice((0.3, 1, 12)),
                     "bool": lambda: rng.random() < 0.2}[kind]()
    row["q_stop_words"], row["q_stop_words_frac"] = maybe(row["q_stop_words"], 0.2), maybe(rng.random(), 0.2)
    row["line_chars"] = [rng.choice((0, 5, 20, 40, 120)) for _ in range(n_lines)]
    row["line_words"] = [c // 5 for c in row["line_chars"]]
    row["line_flags"] = [rng.randrange(16) for _ in range(n_lines)]
    row["line_sentences"] = [rng.randint(0, 3) for _ in range(n_lines)]
    row["quality_model_score"] = maybe(rng.random(), 0.3)
    row["tox_word_hits"] = maybe(rng.randint(0, 6), 0.2)
    row["tox_word_ratio"] = maybe(rng.random() * 0.01, 0.2)
    row["tox_clf_frac"] = maybe(rng.random() * 0.5, 0.3)
    row["url_blocked_domain"] = "bad.example" if rng.random() < 0.05 else None
    row.update(optout_noai=rng.random() < 0.05, optout_tdm=False, optout_detail="")
    return row


def columns_of(rows: list[dict]) -> dict[str, np.ndarray]:
    names = {c.column for flt in registry.filters().values() for rule in flt.rules for c in rule.conditions
             if c.column}
    return {n: np.array([np.nan if r.get(n) is None else float(r[n]) for r in rows]) for n in names}


CONFIGS = [
    {},
    {"language": {"min_score": 0.3}, "quality": {"thresholds": {"gopher_min_words": 120, "c4_min_sentences": 2},
                                                 "per_language": {"de": {"gopher_max_dup_lines_frac": 0.05}},
                                                 "filters": ["c4", "fineweb", "gopher_quality"]},
     "toxicity": {"wordlists": "/lists", "wordlist_min_hits": 2, "classifier_max_frac": 0.1},
     "quality_model": {"min_score": 0.7}},
]


@pytest.mark.parametrize("overrides", CONFIGS, ids=["defaults", "changed"])
def test_decider_and_column_evaluation_agree_on_every_threshold_rule(overrides):
    cfg = load_config(overrides=overrides)
    rng = random.Random(7)
    rows = [random_row(rng) for _ in range(1500)]
    decider = Decider(cfg)
    failed = [set(decider.decide(r).failed) for r in rows]
    fails = decisions.evaluate_columns(cfg, columns_of(rows), rows, [r["lang"] for r in rows])
    names = {ref.rule.name for ref in decisions.threshold_rules(cfg)}
    assert set(fails) == names and len(names) >= 15
    for name, mask in fails.items():
        expected = np.array([name in f for f in failed])
        assert (mask == expected).all(), (name, int((mask != expected).sum()))
    hit = {name for name, mask in fails.items() if mask.any()}
    assert {"language.low_score", "gopher_quality.min_words", "c4.min_sentences", "fineweb.line_punct",
            "quality_model.score", "toxicity_classifier.score"} <= hit, "the rows must exercise the rules"
    if overrides:
        assert "toxicity_words.score" in hit


# ------------------------------------------------------------------------------ a new family, end to end
def _digit_frac(text: str, ctx: Context) -> dict:
    return {"q_digit_frac": sum(ch.isdigit() for ch in text) / len(text) if text else 0.0}


DIGITS = SignalFamily(
    name="digits",
    fields=(pa.field("q_digit_frac", pa.float64()),),
    compute=_digit_frac,
    config_keys=("digits.max_frac",),
    sections=("digits",),
    filters=(Filter("digits", thresholds_at="digits", rules=(ThresholdRule(
        "digits.too_many", (Condition("q_digit_frac", ">", "max_frac", kind="frac", label="share of digits"),),
        reason=lambda s, t: f"digits {s['q_digit_frac']:.3f} > {t['max_frac']:g}"),)),),
)


def digits_config(max_frac: float = 0.3) -> dict:
    cfg = load_config()
    cfg["digits"] = {"max_frac": max_frac}            # the family's defaults YAML entry
    cfg["refine"]["filters"] = [*cfg["refine"]["filters"], "digits"]
    return cfg


def test_a_family_registered_in_a_test_is_stored_computed_and_filterable():
    from pipelines import extract, refine_io
    from pipelines.report.whatif import WhatIf

    text = "Order 4411 2093 8812 7730 shipped on 2024-05-06.\n" * 5
    with registry.registered(DIGITS):
        cfg = digits_config()
        assert "q_digit_frac" in extract.output_schema(cfg).names        # the extract Parquet schema
        assert "q_digit_frac" in refine_io.kept_schema().names
        assert registry.signal_names()[-1] == "q_digit_frac"
        row = {"url": "https://shop.example/", "text": text, **signals.SignalComputer(cfg)({"url": "u", "text": text})}
        assert row["q_digit_frac"] == pytest.approx(_digit_frac(text, None)["q_digit_frac"])
        assert row["q_digit_frac"] > 0.3
        assert signals.has_current_signals(row, signals.signals_version(cfg))
        decision = Decider(cfg).decide(row)
        assert "digits.too_many" in decision.failed
        assert any(r.startswith("digits") for r in decision.failed)
        assert not any("digits" in r for r in Decider(digits_config(0.9)).decide(row).failed)
        only = _set(cfg, "refine.filters", ["digits"])
        fails = decisions.evaluate_columns(only, {"q_digit_frac": np.array([row["q_digit_frac"], 0.01])})
        assert fails["digits.too_many"].tolist() == [True, False]
        assert "digits.max_frac" in {".".join(s.path) for s in WhatIf(cfg).specs}   # the report's what-if
        with pytest.raises(ValueError, match="reads config key 'digits.max_frac'"):
            signals.SignalComputer(load_config())                           # no defaults entry: refused
        with pytest.raises(ValueError, match="column 'q_digit_frac' already exists"):
            registry.register(SignalFamily("digits2", DIGITS.fields, _digit_frac))
    assert "q_digit_frac" not in registry.signal_names() and "digits" not in decisions.filter_names()
    assert [f.name for f in registry.signal_fields()] == BEFORE


def test_a_registered_family_removes_a_document_in_the_refine_steps():
    """The refine stage's own per-document steps (signals, then decision) with the new family."""
    from pipelines.refine import REMOVED, DecideFn, SignalsFn

    digits = "Order 4411 2093 8812 7730 shipped on 2024-05-06, invoice 99812.\n" * 8
    words = ("The library opened a new reading room for children and their parents this spring. "
             "Visitors can borrow books, attend readings and use the quiet study area all week.\n") * 6
    with registry.registered(DIGITS):
        cfg = digits_config()
        cfg["refine"]["filters"] = ["digits"]
        sig, dec = SignalsFn(cfg), DecideFn(cfg)
        sig.setup()
        dec.setup()
        outs = {}
        for name, text in (("digits", digits), ("words", words)):
            row = next(iter(sig.process({"doc_id": name, "url": f"https://{name}.example/", "text": text})))
            outs[name] = list(dec.process(row))
    removed = [o.value for o in outs["digits"] if getattr(o, "tag", None) == REMOVED]
    assert removed and removed[0]["removal_rule"] == "digits.too_many"
    assert removed[0]["removal_reason"].startswith("digits 0.")
    assert not any(getattr(o, "tag", None) == REMOVED for o in outs["words"])
    kept = [o for o in outs["words"] if isinstance(o, dict)]
    assert kept and kept[0]["q_digit_frac"] == 0.0


def test_a_new_module_in_the_families_package_is_found_and_appended(tmp_path, monkeypatch):
    import sys

    import filters.families as families

    (tmp_path / "zz_extra.py").write_text(
        "import pyarrow as pa\nfrom filters.family import SignalFamily\n"
        "FAMILY = SignalFamily('zz_extra', (pa.field('zz_value', pa.int64()),), lambda text, ctx: {'zz_value': 1})\n")
    monkeypatch.setattr(families, "__path__", [*families.__path__, str(tmp_path)])
    try:
        found = families.discovered()
    finally:
        sys.modules.pop("filters.families.zz_extra", None)
    assert [f.name for f in found] == ["zz_extra"]
    assert [f.name for f in families.BUILTIN] == ["language", "quality", "quality_model", "toxicity", "pii",
                                                  "consent"]
