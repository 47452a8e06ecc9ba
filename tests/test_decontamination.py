"""filters.decontamination: normalisation, the n-gram index, precision rules and benchmark loading;
``python -m tokenization contamination`` on shards built by the real tokenize stage."""
from __future__ import annotations

import gzip
import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.decontamination import (BenchmarkError, BenchmarkIndex, load_benchmark_texts, ngram_hashes,
                                     normalize_words, paragraphs, word_spans)
from filters.text_units import stop_words

# Written for these tests; no real benchmark text.
PASSAGE = ("The lighthouse keeper counted forty seven gulls on the northern breakwater before the "
           "autumn storm flooded the harbour road and closed the ferry crossing for three days.")
OTHER = ("Copper kettles hung above the bakery ovens while apprentices kneaded rye dough shaped into "
         "crescent loaves for the Saturday market beside the cathedral square.")


def test_normalisation_is_unicode_case_and_punctuation_blind():
    assert normalize_words("Don't STOP -- well-known!") == ["don", "t", "stop", "well", "known"]
    assert normalize_words("don 't stop well @-@ known") == ["don", "t", "stop", "well", "known"]
    # NFKC: ligature, fullwidth letters and digits; casefold: ß; composed == decomposed accents
    assert normalize_words("ﬁne ＡＢＣ １２ Straße") == ["fine", "abc", "12", "strasse"]
    assert normalize_words("cafe\u0301 Café") == ["café", "café"]
    assert normalize_words("“quoted”…\u00a0text\t\n") == ["quoted", "text"]
    assert normalize_words("") == [] and normalize_words("— ... !!") == []


def test_word_spans_point_into_the_original_text():
    text = "  Ｈｅｌｌｏ, WORLD—again "
    spans = word_spans(text)
    assert [w for w, _, _ in spans] == ["hello", "world", "again"]
    assert [text[a:b] for _, a, b in spans] == ["Ｈｅｌｌｏ", "WORLD", "again"]


def test_ngram_hashes_are_positional_and_deterministic():
    words = normalize_words(PASSAGE)
    h = ngram_hashes(words, 13)
    assert len(h) == len(words) - 12 and len(set(h.tolist())) == len(h)
    assert ngram_hashes(words[:12], 13).size == 0
    assert ngram_hashes(list(reversed(words)), 13).tolist() != h[::-1].tolist()
    assert ngram_hashes(words, 13).tolist() == h.tolist()


@pytest.mark.parametrize("variant", [
    PASSAGE,                                                          # verbatim
    PASSAGE.upper(),                                                  # re-cased
    PASSAGE.replace(" ", " ,  ").replace(".", "!!").replace("forty seven", "forty-seven"),  # re-punctuated
    PASSAGE.replace("fl", "\ufb02").replace("The", "Ｔｈｅ"),           # Unicode compatibility forms
])
def test_planted_variants_are_found_with_their_span(variant):
    index = BenchmarkIndex.build([("quiz", PASSAGE), ("other", OTHER)])
    page = "Welcome to our site. Read the story below.\n" + variant + "\nThanks for reading, see you soon."
    [m] = index.find(page)
    assert m.benchmark == "quiz"
    assert m.ngrams == len(normalize_words(PASSAGE)) - 12
    assert page[m.start:m.end] == m.text == variant.strip(".!")[:len(m.text)]
    quoted = normalize_words(m.text)
    assert len(quoted) >= 13 and quoted == normalize_words(PASSAGE)[:len(quoted)]
    assert "quiz" in m.reason() and m.text in m.reason()


def test_embedded_mid_sentence_and_partial_overlap():
    index = BenchmarkIndex.build([("quiz", PASSAGE)])
    words = PASSAGE.split()
    page = "Yesterday my aunt told us that " + " ".join(words[5:20]) + " which nobody believed."
    [m] = index.find(page)
    assert m.ngrams == 15 - 12 and m.text == " ".join(words[5:20])


def test_near_miss_below_n_words_is_not_found():
    index = BenchmarkIndex.build([("quiz", PASSAGE)])
    words = PASSAGE.split()
    # 12 shared words, then a different word: no 13-gram in common
    assert index.find("Intro. " + " ".join(words[:12]) + " banana " + " ".join(words[13:24])) == []
    # the same 12 words with n=12 are found
    assert BenchmarkIndex.build([("quiz", PASSAGE)], n=12).find(" ".join(words[:12]))


def test_min_matches():
    index = BenchmarkIndex.build([("quiz", PASSAGE)])
    words = PASSAGE.split()
    page = " ".join(words[:13])                       # exactly one 13-gram
    assert len(index.find(page, min_matches=1)) == 1
    assert index.find(page, min_matches=2) == []
    assert index.find(" ".join(words[:14]), min_matches=2)[0].ngrams == 2


BOILERPLATE = "if you have any questions about this or any of the other things that we do"


def test_stop_word_ngrams_are_not_indexed():
    bench = [("quiz", "Question one. " + BOILERPLATE + ". " + PASSAGE)]
    page = "Contact page. " + BOILERPLATE.capitalize() + ", please write to us."
    assert BenchmarkIndex.build(bench).find(page)             # raw: the boilerplate matches
    strict = BenchmarkIndex.build(bench, max_stopword_frac=0.8, stop_words=stop_words("en"))
    assert strict.stopword_dropped > 0
    assert strict.find(page) == []
    assert strict.find(PASSAGE)[0].benchmark == "quiz"        # real content is still indexed


def test_drop_common_with_a_reference_sample():
    phrase = "subscribe to our newsletter to receive the latest news and offers straight to your inbox"
    index = BenchmarkIndex.build([("quiz", PASSAGE + "\n\n" + phrase)])
    web = [f"Page {i}. {phrase.upper()}!" for i in range(3)] + [PASSAGE]   # passage on one page only
    assert index.drop_common(web, min_docs=3) == len(normalize_words(phrase)) - 12
    assert index.find("Footer: " + phrase) == []
    assert index.find(PASSAGE)


def test_index_reports_several_benchmarks_and_pickles():
    index = BenchmarkIndex.build([("b", PASSAGE), ("a", OTHER), ("a", PASSAGE)])
    n_passage, n_other = (len(normalize_words(t)) - 12 for t in (PASSAGE, OTHER))
    assert index.ngrams_per_benchmark() == {"b": n_passage, "a": n_other + n_passage}
    clone = pickle.loads(pickle.dumps(index))
    found = clone.find("x " + PASSAGE + " y " + OTHER)
    assert [m.benchmark for m in found] == ["a", "b"]
    assert found[0].ngrams == len(ngram_hashes(normalize_words(PASSAGE), 13)) + \
        len(ngram_hashes(normalize_words(OTHER), 13))
    assert len(found[0].spans) == 2


# ---------------------------------------------------------------------------------------- loading
def test_load_jsonl_fields_parquet_text_gzip_and_glob(tmp_path):
    rows = [{"question": PASSAGE, "answer": "gulls", "id": 1}, {"question": OTHER, "answer": None}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_benchmark_texts(str(tmp_path / "a.jsonl"), fields=["question", "answer"]) == \
        [PASSAGE + "\ngulls", OTHER]
    assert load_benchmark_texts(str(tmp_path / "a.jsonl")) == [PASSAGE + "\ngulls", OTHER]   # all strings
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    assert load_benchmark_texts(str(tmp_path / "b.parquet"), fields=["question"]) == [PASSAGE, OTHER]
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress(f" = Title = \n \n{PASSAGE}\nwrapped line\n\n\n{OTHER}\n".encode()))
    assert load_benchmark_texts(str(tmp_path / "c.txt.gz")) == ["= Title =", PASSAGE + "\nwrapped line", OTHER]
    assert len(load_benchmark_texts(str(tmp_path / "*.jsonl"))) == 2
    assert paragraphs("a\r\n\r\nb") == ["a", "b"]


@pytest.mark.parametrize("content,fmt,fields,message", [
    (b'{"question": "ok"}\n{not json\n', "auto", None, "line 2: not JSON"),
    (b'{"question": "ok"}\n', "auto", ["questoin"], "questoin found in no record"),
    (b"\xff\xfe\x00garbage", "text", None, "not UTF-8"),
    (b"PAR1 not parquet", "parquet", None, "not readable Parquet"),
    (b"\n\n  \n", "text", None, "no text found"),
    (b"x", "csv", None, "use one of"),
])
def test_bad_benchmark_files_fail_with_one_message(tmp_path, content, fmt, fields, message):
    path = tmp_path / "bench.jsonl"
    path.write_bytes(content)
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark_texts(str(path), fmt, fields)


def test_missing_benchmark_files(tmp_path):
    with pytest.raises(BenchmarkError, match="no files match"):
        load_benchmark_texts(str(tmp_path / "*.jsonl"))
    with pytest.raises(BenchmarkError, match="cannot read"):
        load_benchmark_texts(str(tmp_path / "absent.txt"))


# ---------------------------------------------------------------------------------------- shards
def test_contamination_cli_on_tokenized_shards(tmp_path, capsys):
    from pipelines.cli import main as pipelines_main
    from tokenization.__main__ import main as tok_main
    from tokenization.tokenizer import train_bpe

    filler = ["Morning fog rolled over the valley as farmers walked their cattle to the upper meadow.",
              "The museum reopened its east wing with paintings on loan from a private collection.",
              "Engineers tested the new bridge by parking loaded trucks across every lane for an hour."]
    texts = [f"{filler[i % 3]} Story number {i}. {filler[(i + 1) % 3]}" for i in range(12)]
    texts[5] = "Local news. " + PASSAGE.lower().replace(",", "") + " More local news."
    inp = tmp_path / "docs"
    inp.mkdir()
    pq.write_table(pa.table({"url": [f"https://n.example/{i}" for i in range(12)], "text": texts}),
                   inp / "docs.parquet")
    (tmp_path / "tok.json").write_text(train_bpe(texts, 400).to_str())
    shards = tmp_path / "shards"
    assert pipelines_main(["tokenize", "--input", str(inp), "--tokenizer", str(tmp_path / "tok.json"),
                           "--output", str(shards), "--val-fraction", "0.3", "--direct_num_workers=1"]) == 0
    capsys.readouterr()

    (tmp_path / "eval.txt").write_text(f"{OTHER}\n\n{PASSAGE}\n")
    assert tok_main(["contamination", "--shards", str(shards), "--text", str(tmp_path / "eval.txt")]) == 1
    out = capsys.readouterr().out
    assert "CONTAMINATED: 1 document(s) hit" in out and "15 of 27 13-grams shared" in out
    assert "the lighthouse keeper counted forty seven gulls" in out

    (tmp_path / "clean.txt").write_text(OTHER + "\n")
    assert tok_main(["contamination", "--shards", str(shards), "--text", str(tmp_path / "clean.txt")]) == 0
    out = capsys.readouterr().out
    assert "clean: no 13-gram" in out and "(12 documents:" in out

    assert tok_main(["contamination", "--shards", str(tmp_path / "nope"), "--text",
                     str(tmp_path / "clean.txt")]) == 2
    assert tok_main(["contamination", "--shards", str(shards), "--text", str(tmp_path / "clean.txt"),
                     "--ngram", "40"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err and "lower --ngram" in err
