"""profanity_check scored from arrays (filters/linear_text.py ``LinearTextModel``) against scikit-learn.

The arrays path must give scikit-learn's ``predict_proba`` (what ``profanity_check.predict_prob``
returns) on real-web lines and hostile strings, must not import scikit-learn once its cache exists,
and must rebuild a stale or damaged cache instead of trusting it.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from filters import array_cache, linear_text, toxicity
from tests.conftest import shared_data_dir

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def sklearn_proba():
    from profanity_check import predict_prob   # the old path: joblib + scikit-learn

    return lambda lines: np.asarray(predict_prob(list(lines)), dtype=np.float64)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return toxicity.load_profanity_model(tmp_path_factory.mktemp("cache"), reuse=False)


@pytest.fixture(scope="module")
def realweb_lines(request):
    """The lines of the first 120 realweb pages (none without ``../shared``: the hostile lines
    are still checked)."""
    if not (shared_data_dir() / "realweb" / "realweb.warc.gz").exists():
        return []
    pages = request.getfixturevalue("realweb_extracted")   # conftest: extracted once per session
    return [line.strip() for page in pages[:120] for line in page["text"].split("\n")]


def hostile_lines(model) -> list[str]:
    rng = random.Random(7)
    terms = sorted(model.vocab)
    return [
        "", " ", "\t\r\x0b\x0c", "\u3000\u00a0", "!!!", "... ??? --- ***", "#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "a", "I", "__", "a_b c_d", "x" * 100_000, "lorem ipsum dolor sit amet " * 5000, "fuck " * 10_000,
        "FUCK YOU", "Fuck you, you stupid IDIOT!!!", "you are a fucking idiot and a piece of shit",
        "sh1t f*ck a$$hole b!tch", "The museum opens at nine and guided tours start every hour.",
        "ΟΔΟΣ ΣΑΣ ΌΣΟΣ ΧΡΌΝΟΣ ΠΈΡΑΣΕ Σ ΑΣ\u0301", "İstanbul İİİ ǅemal ß ẞ ﬁne ﬀ", "Cafe\u0301 nai\u0308ve Zürich",
        "Hello мир 世界 こんにちは世界です สวัสดีครับ مرحبا नमस्ते 안녕하세요", "\u202eevil\u202c \u200bzero\u200dwidth",
        "emoji 😀💩🔥 fuck💩shit", "text\x00with\x00nul", "lone \ud800 surrogate", "٠١٢٣ ０３０ ४११ digits 12 345",
        "two\nlines in one", "shit\nshit\n\nfuck", "line\u2028sep\u2029para\x85nel\x1crs",
        " ".join(terms),                                              # every feature in one line
        " ".join(rng.choice(terms) for _ in range(20_000)),           # long line, repeats
        *(" ".join(rng.choice(terms) for _ in range(rng.choice((1, 2, 3, 10, 50, 300)))) for _ in range(200)),
        *("".join(rng.choice("aZ9_ .,\n-éß中") for _ in range(rng.choice((0, 1, 5, 40, 400)))) for _ in range(100)),
    ]


def test_arrays_match_predict_proba_on_realweb_and_hostile_lines(model, sklearn_proba, realweb_lines):
    lines = realweb_lines + hostile_lines(model)
    assert len(lines) >= 300
    expected = sklearn_proba(lines)
    got = np.array(model.predict(lines))
    assert got.shape == expected.shape
    worst = float(np.max(np.abs(got - expected)))
    assert worst <= TOLERANCE, worst
    assert np.any(expected >= 0.5) and np.any(expected < 0.5)   # both sides of the threshold are tested
    one = [model.predict([line])[0] for line in lines[:400]]  # batching changes nothing, not even a bit
    assert one == got[:400].tolist()
    assert model.predict([]) == []


def test_classifier_scores_equal_the_sklearn_path(sklearn_proba, realweb_lines, tmp_path):
    clf = toxicity.ToxicityClassifier("profanity_check", cache_dir=tmp_path)
    old = toxicity.ToxicityClassifier.__new__(toxicity.ToxicityClassifier)
    old.kind, old._predict = "profanity_check", lambda lines: sklearn_proba(lines).tolist()
    texts = ["\n".join(realweb_lines[i:i + 40]) for i in range(0, len(realweb_lines), 40)]
    texts += ["you are a fucking idiot\nThe museum opens at nine.\n\n!!!", "", "fuck"]
    for new_out, old_out in zip(clf.score_many(texts), [old.score(t) for t in texts]):
        assert new_out["tox_clf_lines"] == old_out["tox_clf_lines"]
        assert new_out["tox_clf_frac"] == old_out["tox_clf_frac"]
        assert abs(new_out["tox_clf_max"] - old_out["tox_clf_max"]) <= TOLERANCE


def test_steady_state_does_not_import_scikit_learn(tmp_path):
    toxicity.load_profanity_model(tmp_path / "corpus-pipeline", reuse=False)    # builds the cache
    code = ("import sys; from filters.toxicity import ToxicityClassifier; "
            "r = ToxicityClassifier('profanity_check').score('you are a fucking idiot\\nhello there'); "
            "print(r['tox_clf_lines'], sorted(m for m in ('sklearn', 'joblib', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT),
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "[0] []"


def _cache(tmp_path: Path) -> Path:
    return tmp_path / toxicity.PROFANITY_CACHE_NAME


def _probe(model) -> list[str]:
    return ["you are a fucking idiot", "The museum opens at nine.", "shit happens", "piece of crap", ""]


def _assert_rebuilt(tmp_path, sklearn_proba):
    model = toxicity.load_profanity_model(tmp_path, reuse=False)
    lines = _probe(model)
    assert np.max(np.abs(np.array(model.predict(lines)) - sklearn_proba(lines))) <= TOLERANCE
    key = toxicity.profanity_cache_key(toxicity.profanity_model_files())
    assert linear_text.read_cache(_cache(tmp_path), key) is not None    # a good file again


def _altered(model) -> linear_text.LinearTextModel:
    arrays = model.arrays()
    return linear_text.LinearTextModel({**arrays, "coef": arrays["coef"] * 3.0, "b": arrays["b"] - 5.0})


def test_stale_cache_is_rebuilt(model, sklearn_proba, tmp_path):
    linear_text.write_cache(_cache(tmp_path), "made-for-other-model-files", _altered(model))
    _assert_rebuilt(tmp_path, sklearn_proba)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "tampered", "missing_array", "bad_shape"])
def test_corrupt_cache_is_rebuilt_not_trusted(model, sklearn_proba, tmp_path, damage):
    path = _cache(tmp_path)
    key = toxicity.profanity_cache_key(toxicity.profanity_model_files())
    linear_text.write_cache(path, key, model)
    good = path.read_bytes()
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(bytes(random.Random(3).randrange(256) for _ in range(5000)))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "tampered":   # valid file, right key, changed numbers: the digest tells
        np.savez(path, **{**arrays, "coef": arrays["coef"] * 3.0})
    elif damage == "missing_array":
        np.savez(path, **{k: v for k, v in arrays.items() if k != "idf"})
    elif damage == "bad_shape":
        bad = {**arrays, "coef": arrays["coef"][:-1]}
        bad.pop("digest")
        bad.pop("key")
        np.savez(path, **bad, digest=np.array(array_cache.arrays_digest(bad)), key=np.array(key))
    assert linear_text.read_cache(path, key) is None
    _assert_rebuilt(tmp_path, sklearn_proba)


def test_unwritable_cache_dir_still_scores(sklearn_proba, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    model = toxicity.load_profanity_model(blocker / "cache", reuse=False)
    lines = _probe(model)
    assert np.max(np.abs(np.array(model.predict(lines)) - sklearn_proba(lines))) <= TOLERANCE


def test_conversion_refuses_what_it_cannot_reproduce(monkeypatch):
    import copy

    import joblib

    vec_path, model_path = toxicity.profanity_model_files()
    vectorizer, clf = joblib.load(vec_path), joblib.load(model_path)
    for params in ({"sublinear_tf": True}, {"ngram_range": (1, 2)}, {"norm": "l1"}, {"binary": True}):
        changed = copy.deepcopy(vectorizer).set_params(**params)
        with pytest.raises(ValueError, match="cannot be converted"):
            linear_text.LinearTextModel.from_sklearn(changed, clf)
    isotonic = copy.deepcopy(clf)
    isotonic.calibrated_classifiers_[2].method = "isotonic"
    with pytest.raises(ValueError, match="fold 2 calibration"):
        linear_text.LinearTextModel.from_sklearn(vectorizer, isotonic)
    # arrays that drift from predict_proba by more than the tolerance are refused at setup
    exact = linear_text.LinearTextModel.predict
    monkeypatch.setattr(linear_text.LinearTextModel, "predict",
                        lambda self, lines: [p + 1e-9 for p in exact(self, lines)])
    with pytest.raises(RuntimeError, match="do not reproduce"):
        toxicity.convert_profanity_model([vec_path, model_path])


def test_a_cache_folder_that_cannot_be_entered_is_a_missing_cache(tmp_path, monkeypatch):
    # Path.is_file raises PermissionError when a folder on the way cannot be entered (a home that
    # is not the worker user's): that is "no cache", never a failed setup.
    from pathlib import Path

    from filters import linear_text

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", denied)
    assert linear_text.read_cache(tmp_path / "locked" / "profanity_check.npz", "key") is None
