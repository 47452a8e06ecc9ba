"""The signal code computes exactly the values it computed before it was made faster (issue 13).

``tests/data/signals_golden.json`` holds, per document, short sha256 digests of the canonical JSON
of its signal values, grouped by family (language, quality, toxicity, PII), made with the code
before the speed work.  The documents are the realweb pages' extracted texts (skipped when
``../shared`` is missing; a page whose extracted text changed - a new extractor version - is not
compared, its text digest tells) and hand-written hostile strings: empty, whitespace only, a huge
single line, mixed scripts, line separators other than ``\\n``, many digits, emails, IBANs, cards,
every labelled PII case, and seeded random strings over an alphabet chosen to hit every pre-check.

Regenerate (only when a signal's definition changes on purpose, with ``SIGNALS_REVISION``):
``python tests/test_signals_speed_equivalence.py --write``.
"""
from __future__ import annotations

import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.pii_cases import CASES  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "signals_golden.json"
WORDLISTS = {   # small lists, so that hits happen on ordinary pages (phrases, case, comments)
    "en": "# comment\nthe\nAND\nof the\nclick here\nprivacy policy\ndata\nsex\n",
    "de": "der\ndie\nund\nvon der\n",
    "zh": "的\n中国\n",
    "ja": "の\nです\n",
    "pl": "i\nnie\nw\n",
}
EXTRA_LANGS = (None, "en", "de", "zh", "ja", "th", "xx")
REGIONS = (None, "DE", "US", "BR", "GB")
FAMILIES = ("lang", "quality", "toxicity", "pii")


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _model_float(x):
    # model outputs (fastText, sklearn) rounded to 9 digits: immune to a last-bit platform difference
    return None if x is None else float(f"{x:.9g}")


class Computers:
    """The models and lists loaded once: language ID, word lists, classifier, settings."""

    def __init__(self, wordlist_dir: Path):
        from filters.language import LanguageIdentifier
        from filters.toxicity import ToxicityClassifier, WordListScorer
        from pipelines.config import load_config

        for lang, text in WORDLISTS.items():
            (wordlist_dir / lang).write_text(text, encoding="utf-8")
        cfg = load_config()
        self.qcfg = cfg["quality"]
        self.lid = LanguageIdentifier(cfg["language"]["model_path"])
        self.scorer = WordListScorer(str(wordlist_dir), ["en"])
        self.clf = ToxicityClassifier("profanity_check")
        pii_cfg = cfg.get("pii") or {}
        placeholders = dict(pii_cfg.get("placeholders") or {})
        self.enabled = [t for t, p in placeholders.items() if p is not None] if placeholders else None
        self.regions = pii_cfg.get("phone_regions_by_language")


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the old behaviour may be an error; the new code must raise the same
        return f"error:{type(exc).__name__}"


def _lang(c: Computers, text: str):
    lang, score = c.lid.identify(text)
    return lang, _model_float(score), [(l, _model_float(p)) for l, p in c.lid.top(text, k=3)]


def _clf(c: Computers, text: str):
    out = c.clf.score(text)
    return dict(out, tox_clf_max=_model_float(out["tox_clf_max"]))


def page_digests(c: Computers, url: str, text: str, extra: bool) -> dict[str, str]:
    """Family -> digest of the signal values of one document (``extra``: other languages/regions too)."""
    from filters import pii, quality

    groups: dict[str, dict] = {f: {} for f in FAMILIES}
    found = _guard(_lang, c, text)
    groups["lang"]["lid"] = found
    lang = found[0] if isinstance(found, tuple) else None
    groups["quality"]["measure"] = _guard(quality.measure, text, lang, policy_phrases=c.qcfg["policy_phrases"],
                                          max_word_chars=c.qcfg["max_word_chars"])
    groups["toxicity"]["words"] = _guard(c.scorer.score, text, lang)
    groups["toxicity"]["clf"] = _guard(_clf, c, text)
    region = _guard(pii.region_hint_for, url, lang, c.regions)
    groups["pii"]["region"] = region
    groups["pii"]["spans"] = _guard(pii.find_pii, text, c.enabled, region if isinstance(region, str) else None)
    if extra:
        for other in EXTRA_LANGS:
            groups["quality"][f"measure:{other}"] = _guard(quality.measure, text, other)
            groups["quality"][f"measure_short:{other}"] = _guard(
                quality.measure, text, other, policy_phrases=["Cookie", "javascript"], max_word_chars=12)
            groups["toxicity"][f"words:{other}"] = _guard(c.scorer.score, text, other)
        for reg in REGIONS:
            groups["pii"][f"spans:{reg}"] = _guard(pii.find_pii, text, None, reg)
            groups["pii"][f"redact:{reg}"] = _guard(pii.redact, text, None, reg)
        groups["pii"]["some_types"] = _guard(pii.find_pii, text, ["phone", "card", "email"], "DE")
    return {family: _digest(values) for family, values in groups.items()}


def hostile_texts() -> dict[str, str]:
    """Named hand-written and seeded-random documents."""
    out = {
        "empty": "", "space": " ", "newlines": "\n\n\n", "whitespace": "\t \r\n \x0b\x0c \u3000\u00a0",
        "huge_line": "lorem ipsum dolor sit amet " * 3000,
        "huge_word": "a" * 20_000,
        "many_short_lines": "ok.\n" * 5000,
        "digits_line": "1234567890" * 300,
        "digit_words": " ".join(str(i) for i in range(5000)),
        "mixed_scripts": ("Hello мир 世界 こんにちは世界です สวัสดีครับ مرحبا नमस्ते Γειά σου 안녕하세요.\n" * 40),
        "separators": "one\rtwo\r\nthree\u2028four\u2029five\x1cSIX\x1d\x1e\x85seven\x0bEight\x0cnine. ",
        "nul": "text\x00with\x00nul 030 1234567\x00",
        "combining": "Cafe\u0301 nai\u0308ve \u00e9l\u00e8ve. Zürich 12.345.678-5\n",
        "unicode_digits": "Call ٠٣٠ ١٢٣٤٥٦٧ or ０３０ １２３４５６７ or ४११११११११११११११११ ok",
        "quality_mix": (
            "• bullet one\n- bullet two\n* three…\nThis page uses cookies. Privacy Policy\n"
            "Enable JavaScript to continue\n\nLorem Ipsum here {x}\n\nsame line\nsame line\n\n"
            "para\n\npara\n\n# ## ### ... … the the the the the the the the of the of the\n"
            "Mr. Smith went to Washington. He said: \"Hi!\" Then left… Really?! Yes.\n"
            "数字は一二三です。本当に？はい！\n" + "wordy " * 30 + "\n" + "x" * 1500 + "\n"
            "Wow!\nREALLY!!\n(quoted)\" 'single' ...\n— … ·\n"),
        "greek_sigma": "ΟΔΟΣ\nΣΑΣ ΟΔΟΣ.\nΣ\nΑΣ\u0301\nΌΣΟΣ ΧΡΌΝΟΣ ΠΈΡΑΣΕ\n" * 3,
        "pii_mix": (
            "mail john.doe@example.com, a..b@x.com, logo@2x.png, x@y.co.\nIP 8.8.8.8 192.168.0.1 1.2.3.4 "
            "ip 1.2.3.4 version 2.0.0.16 2001:4860:4860::8888 fe80::1\ncard 4111 1111 1111 1111 "
            "4111-1111-1111-1111 4111 1111-1111 1111 5500 0000 0000 0004\nIBAN DE89 3704 0044 0532 0130 00 "
            "GB82WEST12345698765432 DE89370400440532013001\nSSN 123-45-6789 536-90-5478 SSN 536905478 "
            "+81 158-23-2012\nCPF 529.982.247-25 CPF 52998224725 RUT 12.345.678-5 DNI 12345678Z X1234567L "
            "CUIT 20-12345678-6 HEGG560427MVZRRL04\nAKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPL2\n"
            "Tel. +49 30 1234567, 030 1234567, (212) 555-0123, 06.09.2017, Bestellnummer 0301234567, "
            "53.368944, 27/027/36500, C.I. 1.234.567-2\n"),
    }
    for i, (text, region, _) in enumerate(CASES):
        out[f"pii_case_{i}"] = text
    rng = random.Random(13)
    alphabet = ("abcxyzAKIZ" "0123456789" "0123456789" " \n\t.-,/:@+()#…" "٣３४" "éßł中の" "\u2028\x85")
    for i in range(120):
        n = rng.choice((0, 1, 5, 20, 60, 200, 800))
        out[f"random_{i}"] = "".join(rng.choice(alphabet) for _ in range(n))
    for i in range(40):   # digit groups that look like phones, cards, ids
        groups = [str(rng.randrange(10 ** rng.randint(1, 6))).zfill(rng.randint(1, 6)) for _ in range(rng.randint(1, 8))]
        seps = [rng.choice((" ", "-", ".", "/", "", "  ", " - ")) for _ in groups]
        out[f"digits_{i}"] = rng.choice(("", "+", "Tel ", "CPF ", "SSN ", "IBAN DE")) + "".join(
            g + s for g, s in zip(groups, seps))
    return out


def realweb_pages_of_shared():
    """For ``--write``; the tests take conftest's ``realweb_extracted`` fixture (the same list)."""
    from bench.bench_signals import extracted_pages
    from tests.conftest import shared_data_dir

    warc = shared_data_dir() / "realweb" / "realweb.warc.gz"
    if not warc.exists():
        return None
    return list(extracted_pages(warc))


def compute(pages, wordlist_dir: Path) -> dict:
    computer = Computers(wordlist_dir)
    out = {"hostile": {}, "pages": {}}
    for name, text in hostile_texts().items():
        out["hostile"][name] = page_digests(computer, "https://example.de/x", text, extra=True)
    for page in pages or []:
        out["pages"][page["key"]] = {"text": _digest(page["text"]),
                                     **page_digests(computer, page["url"], page["text"], extra=False)}
    return out


@pytest.fixture(scope="module")
def golden():
    with open(GOLDEN, encoding="utf-8") as fh:
        return json.load(fh)


def _mismatches(expected: dict, got: dict) -> list[str]:
    return [f"{name}: {fam}" for name, fams in expected.items() for fam, digest in fams.items()
            if got.get(name, {}).get(fam) != digest]


def test_hostile_strings_keep_their_signal_values(golden, tmp_path):
    got = compute([], tmp_path)["hostile"]
    assert set(got) == set(golden["hostile"])
    bad = _mismatches(golden["hostile"], got)
    assert not bad, f"{len(bad)} changed (document: family): {bad[:20]}"


def test_realweb_pages_keep_their_signal_values(golden, realweb_extracted, tmp_path):
    pages = realweb_extracted   # conftest: extracted once per session, skips without ../shared
    expected = golden["pages"]
    same_text = [p for p in pages if p["key"] in expected and expected[p["key"]]["text"] == _digest(p["text"])]
    if len(same_text) < len(expected) // 2:
        pytest.skip(f"only {len(same_text)} of {len(expected)} pages extract to the same text as when the "
                    "golden values were made (extractor changed); regenerate them from the old signal code")
    got = compute(same_text, tmp_path)["pages"]
    bad = _mismatches({p["key"]: expected[p["key"]] for p in same_text}, got)
    assert len(same_text) > 900 or len(expected) < 900
    assert not bad, f"{len(bad)} changed (page offset: family): {bad[:20]}"


def test_batched_classifier_and_language_id_match_one_by_one():
    from filters.language import LanguageIdentifier
    from filters.toxicity import ToxicityClassifier

    texts = list(hostile_texts().values()) + ["You are a stupid idiot.\nHave a nice day.", "Guten Tag!"]
    clf = ToxicityClassifier("profanity_check")
    assert clf.score_many(texts) == [clf.score(t) for t in texts]
    assert clf.score_many([]) == []
    lid = LanguageIdentifier()
    assert lid.identify_many(texts) == [lid.identify(t) for t in texts]
    assert lid.identify_many([]) == []


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_signals_speed_equivalence.py --write")
    with tempfile.TemporaryDirectory() as tmp:
        result = compute(realweb_pages_of_shared(), Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    with open(GOLDEN, "w", encoding="utf-8") as fh:
        json.dump(result, fh, sort_keys=True, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {GOLDEN}: {len(result['hostile'])} hostile documents, {len(result['pages'])} pages")


def test_segmenters_get_bounded_pieces_and_survive_a_huge_token():
    """MeCab killed the process (SIGSEGV) on one ~200,000-character token and newmm is
    superlinear: the segmenters get pieces of at most SEGMENT_CHARS, cut after whitespace."""
    from filters import text_units

    line = ("word " * 5000).strip()
    pieces = text_units.bounded_pieces(line, 1000)
    assert "".join(pieces) == line and max(map(len, pieces)) <= 1000
    assert all(p.endswith(" ") for p in pieces[:-1])  # cut after a space, never inside a word
    hard = text_units.bounded_pieces("x" * 2500, 1000)
    assert [len(p) for p in hard] == [1000, 1000, 500]
    assert text_units.bounded_pieces("short", 1000) == ["short"]
    code = ("from filters import text_units; "
            "w = text_units.words('日本語の文章です。' + 'a' * 200_000 + ' 終わり', 'ja'); "
            "print(len(w), w[0], w[-1])")
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=str(Path(__file__).resolve().parent.parent))
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])  # -11 before: SIGSEGV in MeCab
    n, first, last = done.stdout.split()
    assert first == "日本" and last == "終わり" and int(n) >= 3
