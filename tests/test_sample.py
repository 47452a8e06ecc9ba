"""The bundled sample WARC: regenerates byte-identically and contains what its manifest promises.

Everything here parses the committed ``samples/sample.warc.gz`` with warcio, so a drift between the
generator, the manifest and the file, or a sample that silently lost one of its cases, fails here.
"""
from __future__ import annotations

import difflib
import gzip
import io
import json
import re
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from samples import make_sample

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "samples" / "sample.warc.gz"
README = REPO_ROOT / "samples" / "README.md"

MANIFEST = make_sample.manifest()
BY_ID = {row["id"]: row for row in MANIFEST}
FETCHES = len(MANIFEST)


# ------------------------------------------------------------------------------------------------
# A resilient reader: split the file into gzip members, parse each with warcio, and report a
# member that does not decompress instead of stopping (what the pipeline's reader must also do).
# ------------------------------------------------------------------------------------------------

class Rec:
    def __init__(self, offset: int, record, content: bytes, raw: bytes):
        self.offset = offset
        self.type = record.rec_type
        self.headers = record.rec_headers
        self.http = record.http_headers
        self.content = content  # after Content-/Transfer-Encoding decoding, as warcio gives it
        self.raw = raw          # payload bytes as stored in the record

    def h(self, name: str):
        return self.headers.get_header(name)


def read_resilient(data: bytes) -> tuple[list[Rec], list[tuple[int, str]]]:
    records: list[Rec] = []
    bad: list[tuple[int, str]] = []
    pos = 0
    while pos < len(data):
        inflater = zlib.decompressobj(wbits=31)
        try:
            inflater.decompress(data[pos:])
            if not inflater.eof:
                raise zlib.error("gzip member ends early")
            end = len(data) - len(inflater.unused_data)
        except zlib.error as exc:
            bad.append((pos, str(exc)))
            nxt = data.find(b"\x1f\x8b\x08", pos + 1)
            pos = nxt if nxt != -1 else len(data)
            continue
        member = data[pos:end]
        for record in ArchiveIterator(io.BytesIO(member), check_digests="raise"):
            content = record.content_stream().read()
            raw_iter = ArchiveIterator(io.BytesIO(member))
            raw = next(iter(raw_iter)).raw_stream.read()
            records.append(Rec(pos, record, content, raw))
        pos = end
    return records, bad


@pytest.fixture(scope="module")
def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture(scope="module")
def parsed(sample_bytes):
    return read_resilient(sample_bytes)


@pytest.fixture(scope="module")
def responses(parsed) -> dict[str, Rec]:
    """Fetch id -> its response (or revisit) record, located by the manifest's offset."""
    records, _ = parsed
    at = {r.offset: r for r in records}
    return {row["id"]: at[row["offset"]] for row in MANIFEST if row["offset"] in at}


def words(text: str) -> list[str]:
    return re.findall(r"\w+(?:['’-]\w+)*", text.lower())


def edit_fraction(a: str, b: str) -> float:
    """Share of words not covered by the longest common word alignment (0 = identical)."""
    wa, wb = words(a), words(b)
    matcher = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return 1 - matched / max(len(wa), len(wb))


def jaccard(a: str, b: str) -> float:
    sa, sb = set(words(a)), set(words(b))
    return len(sa & sb) / len(sa | sb)


def decoded_html(rec: Rec, row: dict) -> str:
    return rec.content.decode(row["charset"])


# ------------------------------------------------------------------------------------------------
# The file itself
# ------------------------------------------------------------------------------------------------

def test_regenerating_gives_the_committed_file_byte_for_byte(tmp_path, sample_bytes):
    out = tmp_path / "regen.warc.gz"
    subprocess.run([sys.executable, str(REPO_ROOT / "samples" / "make_sample.py"), "--out",
                    str(out)], check=True, capture_output=True)
    fresh = out.read_bytes()
    if fresh != sample_bytes:
        same_content = _inflated(fresh) == _inflated(sample_bytes)
        pytest.fail("samples/sample.warc.gz differs from a fresh run of the generator: "
                    + ("same records, different Deflate output (zlib "
                       f"{zlib.ZLIB_RUNTIME_VERSION}); regenerate on this zlib or pin it"
                       if same_content else
                       "the content changed; run `python samples/make_sample.py` and commit"))
    assert len(sample_bytes) < 400 * 1024


def _inflated(data: bytes) -> list[bytes]:
    members, pos = [], 0
    while pos < len(data):
        inflater = zlib.decompressobj(wbits=31)
        try:
            members.append(inflater.decompress(data[pos:]))
            pos = len(data) - len(inflater.unused_data)
        except zlib.error:
            members.append(b"<corrupt>")
            nxt = data.find(b"\x1f\x8b\x08", pos + 1)
            pos = nxt if nxt != -1 else len(data)
    return members


def test_generator_is_deterministic_in_process():
    first, _ = make_sample.build()
    second, _ = make_sample.build()
    assert first == second


def test_one_gzip_member_per_record_and_warcinfo_first(parsed, sample_bytes):
    records, bad = parsed
    assert records[0].offset == 0 and records[0].type == "warcinfo"
    assert b"isPartOf: CC-MAIN-SAMPLE" in records[0].raw
    offsets = [r.offset for r in records]
    assert len(offsets) == len(set(offsets)), "two records share one gzip member"
    assert sample_bytes[:3] == b"\x1f\x8b\x08"


def test_record_counts_match_the_design(parsed):
    records, bad = parsed
    counts = Counter(r.type for r in records)
    assert counts == {"warcinfo": 1, "request": FETCHES, "metadata": FETCHES,
                      "response": FETCHES - 2,  # minus the revisit and the corrupt response
                      "revisit": 1}
    assert 40 <= FETCHES <= 60


def test_exactly_one_malformed_member_in_the_middle_and_reading_continues(parsed, sample_bytes):
    records, bad = parsed
    broken = [row for row in MANIFEST if "malformed" in row["expect"]]
    assert len(broken) == 1
    row = broken[0]
    assert [offset for offset, _ in bad] == [row["offset"]]
    # Its neighbours are intact: the request before it and the metadata after it.
    before = [r for r in records if r.offset < row["offset"]][-1]
    after = [r for r in records if r.offset > row["offset"]]
    assert before.type == "request" and before.h("WARC-Target-URI") == row["url"]
    assert after[0].type == "metadata" and after[0].h("WARC-Concurrent-To") == row["record_id"]
    assert after[0].offset == row["offset"] + row["length"]
    # It sits in the middle: plenty of fetches on both sides.
    later_fetches = {r.h("WARC-Target-URI") for r in after if r.type in ("response", "revisit")}
    assert len(later_fetches) >= 10
    assert row["offset"] > len(sample_bytes) // 4
    # Plain warcio iteration stops there with an error, so the problem is detectable.
    seen = []
    with pytest.raises(ArchiveLoadFailed):
        with SAMPLE.open("rb") as stream:
            iterator = ArchiveIterator(stream)
            for record in iterator:
                seen.append(iterator.get_record_offset())
    assert seen[-1] == before.offset


def test_request_response_metadata_triples_are_linked(parsed):
    records, _ = parsed
    by_url: dict[str, list[Rec]] = {}
    for rec in records[1:]:
        by_url.setdefault((rec.h("WARC-Target-URI"), rec.h("WARC-Date")), []).append(rec)
    info_id = records[0].h("WARC-Record-ID")
    for row in MANIFEST:
        group = by_url[(row["url"], row["date"])]
        types = [r.type for r in group]
        if "malformed" in row["expect"]:
            assert types == ["request", "metadata"]
            continue
        assert types == ["request", row["record"], "metadata"], row["id"]
        request, response, metadata = group
        assert response.h("WARC-Record-ID") == row["record_id"]
        assert request.h("WARC-Record-ID") == row["request_id"]
        assert metadata.h("WARC-Record-ID") == row["metadata_id"]
        assert response.h("WARC-Concurrent-To") == request.h("WARC-Record-ID")
        assert metadata.h("WARC-Concurrent-To") == response.h("WARC-Record-ID")
        assert {r.h("WARC-Warcinfo-ID") for r in group} == {info_id}
        assert request.http.protocol == "GET"


def test_responses_carry_common_crawl_headers(responses):
    for fid, rec in responses.items():
        for name in ("WARC-Target-URI", "WARC-Date", "WARC-Record-ID", "WARC-IP-Address",
                     "WARC-Payload-Digest", "WARC-Block-Digest"):
            assert rec.h(name), (fid, name)
        assert rec.h("Content-Type") == "application/http; msgtype=response"
        if rec.type == "response":
            assert rec.h("WARC-Identified-Payload-Type") == BY_ID[fid]["mime"]
    record_ids = [rec.h("WARC-Record-ID") for rec in responses.values()]
    assert len(set(record_ids)) == len(record_ids)


def test_manifest_urls_are_exactly_the_urls_in_the_file(parsed, responses):
    records, _ = parsed
    in_file = {r.h("WARC-Target-URI") for r in records if r.type == "request"}
    assert in_file == {row["url"] for row in MANIFEST}
    for row in MANIFEST:
        if "malformed" in row["expect"]:
            continue
        assert responses[row["id"]].h("WARC-Target-URI") == row["url"]
        assert responses[row["id"]].type == row["record"]
        assert int(responses[row["id"]].http.get_statuscode()) == row["status"]


# ------------------------------------------------------------------------------------------------
# Languages and text volume
# ------------------------------------------------------------------------------------------------

def test_languages_and_amount_of_prose():
    kept = [row for row in MANIFEST if row["expect"].get("keep")]
    per_lang = Counter(row["lang"] for row in kept)
    assert len(per_lang) >= 6
    for lang, minimum in {"en": 3, "de": 3, "pl": 3, "es": 2, "fr": 2, "zh": 2, "ja": 2}.items():
        assert per_lang[lang] >= minimum, lang
    for row in kept:
        text = make_sample.page_text(row["page"])
        if row["lang"] in ("zh", "ja"):
            cjk = re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", text)
            assert len(cjk) >= 600, row["id"]
            assert text.count(" ") < len(cjk) / 20, "CJK pages must not be space-segmented"
        else:
            assert len(text.split()) >= 250, row["id"]


def test_pages_are_wrapped_in_heavy_boilerplate(responses):
    markers = ('id="cookie-banner"', '<nav class="main-nav">', 'class="widget newsletter"',
               '<footer class="site-footer">', 'class="share"', 'class="widget most-read"')
    html_rows = [row for row in MANIFEST if row["page"] and row["record"] == "response"
                 and "malformed" not in row["expect"] and "truncated" not in row["expect"]]
    for row in html_rows:
        html_text = decoded_html(responses[row["id"]], row)
        for marker in markers:
            assert marker in html_text, (row["id"], marker)
        # The article is a minority of the page's text.
        body_words = len(re.sub(r"<[^>]+>", " ", html_text).split())
        assert len(make_sample.page_text(row["page"]).split()) < body_words
    german = decoded_html(responses["de-radwege"], BY_ID["de-radwege"])
    assert "Impressum" in german and "Datenschutz" in german
    assert "Privacy policy" in decoded_html(responses["en-library"], BY_ID["en-library"])


# ------------------------------------------------------------------------------------------------
# Duplicates
# ------------------------------------------------------------------------------------------------

def test_exact_duplicates_are_byte_identical_at_different_urls_and_dates(responses):
    dups = [row for row in MANIFEST if "exact-dup-of" in row["expect"]]
    assert len(dups) >= 5
    first_by_url = {}
    for row in MANIFEST:
        first_by_url.setdefault(row["url"], row["id"])
    for row in dups:
        original = BY_ID[first_by_url[row["expect"]["exact-dup-of"]]]
        assert responses[row["id"]].content == responses[original["id"]].content
        assert row["url"] != original["url"] and row["date"] != original["date"]
        assert (responses[row["id"]].h("WARC-Payload-Digest")
                == responses[original["id"]].h("WARC-Payload-Digest"))
    variants = [row["url"] for row in dups]
    lib = make_sample.LIB
    assert any("utm_source=" in u for u in variants)
    assert lib + "/" in variants
    assert lib.replace("https:", "http:") in variants
    assert any(u.split("/")[2] != u.split("/")[2].lower() and "#" in u for u in variants)
    hosts = {u.split("/")[2] for u in variants if "elbufer" in u}
    assert len(hosts) == 2, "the German story is served on two hosts"


@pytest.mark.parametrize("copy_id", ["en-library-syndicated", "en-kettle-b", "en-kettle-c"])
def test_near_duplicates_edit_between_5_and_15_percent_of_words(copy_id):
    row = BY_ID[copy_id]
    original = next(r for r in MANIFEST if r["url"] == row["expect"]["near-dup-of"])
    a, b = make_sample.page_text(original["page"]), make_sample.page_text(row["page"])
    assert 0.05 <= edit_fraction(a, b) <= 0.15
    assert jaccard(a, b) >= 0.75
    assert row["site"] != original["site"], "a near copy lives on another site"


def test_near_duplicate_chain_ends_differ_more_than_neighbours():
    chain = BY_ID["en-kettle-a"]["expect"]["near-dup-chain"]
    pages = [next(r for r in MANIFEST if r["url"] == url)["page"] for url in chain]
    texts = [make_sample.page_text(p) for p in pages]
    ab, bc, ac = (edit_fraction(texts[0], texts[1]), edit_fraction(texts[1], texts[2]),
                  edit_fraction(texts[0], texts[2]))
    assert ac > 0.15 and ac > max(ab, bc)


def test_the_near_copies_really_appear_in_the_html(responses):
    for fid in ("en-library-syndicated", "en-kettle-b", "en-kettle-c"):
        html_text = decoded_html(responses[fid], BY_ID[fid])
        first_paragraph = re.search(r"<p>(.*?)</p>", make_sample.fragment(BY_ID[fid]["page"]),
                                    re.S).group(1)
        assert first_paragraph in html_text


def test_same_template_pages_share_only_boilerplate(responses):
    pairs = {(row["id"], BY_ID[next(r["id"] for r in MANIFEST if r["url"] == other)]["id"])
             for row in MANIFEST for other in row["expect"].get("same-template-as", [])}
    assert len(pairs) >= 6  # three sites, both directions
    for left, right in pairs:
        html_l = decoded_html(responses[left], BY_ID[left])
        html_r = decoded_html(responses[right], BY_ID[right])
        for block in ("aside", "footer", "nav"):
            pattern = re.compile(rf"<{block}\b.*?</{block}>", re.S)
            assert pattern.search(html_l).group(0) == pattern.search(html_r).group(0)
        text_l = make_sample.page_text(BY_ID[left]["page"])
        text_r = make_sample.page_text(BY_ID[right]["page"])
        assert jaccard(text_l, text_r) < 0.3
        assert edit_fraction(text_l, text_r) > 0.6


# ------------------------------------------------------------------------------------------------
# Filter cases: PII, toxicity, low quality, consent
# ------------------------------------------------------------------------------------------------

def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                for i, d in enumerate(digits))
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def test_pii_page_has_real_pii_and_lookalikes(responses):
    row = BY_ID["en-pii"]
    text = make_sample.page_text(row["page"])
    html_text = decoded_html(responses["en-pii"], row)
    pii, lookalikes = row["expect"]["pii"], row["expect"]["not-pii"]
    for values in list(pii.values()) + list(lookalikes.values()):
        for value in values:
            assert value in text and value in html_text, value
    assert {"email", "phone", "credit_card", "iban", "ipv4"} <= set(pii)
    assert {p[:3] for p in pii["phone"] if p.startswith("+")} >= {"+49", "+48", "+44"}
    assert any(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", p) for p in pii["phone"])
    assert all(luhn_ok(card) for card in pii["credit_card"])
    assert all(iban_ok(iban) for iban in pii["iban"])
    assert not luhn_ok(lookalikes["card_like_bad_luhn"][0])
    assert not luhn_ok(lookalikes["order_number_bad_luhn"][0])
    assert all(0 <= int(part) <= 255 for part in pii["ipv4"][0].split("."))
    # Only this page carries contact data.
    others = [r for r in MANIFEST if r["page"] and r["id"] != "en-pii"]
    assert not any("@" in make_sample.page_text(r["page"]) for r in others)


HEAVY = {"fuck", "fucking", "shit", "bastard", "asshole", "bullshit", "motherfucker", "dickhead",
         "goddamn"}
MILD = {"damn", "crap", "hell", "pissed", "idiot"}


def test_toxicity_cases():
    def counts(fid):
        toks = words(make_sample.page_text(BY_ID[fid]["page"]))
        return toks, sum(t in HEAVY for t in toks), sum(t in MILD for t in toks)

    toks, heavy, _ = counts("en-heavy")
    assert heavy >= 15 and heavy / len(toks) > 0.05
    toks, heavy, mild = counts("en-bus")
    assert heavy == 0 and 2 <= mild <= 6 and mild / len(toks) < 0.03
    assert BY_ID["en-bus"]["expect"]["toxic"] == "mild"
    for row in MANIFEST:
        if row["page"] and "toxic" not in row["expect"] and row["lang"] == "en":
            assert counts(row["id"])[1] == 0, row["id"]


def test_low_quality_cases():
    spam = words(make_sample.page_text("en-spam"))
    assert Counter(spam)["cheap"] / len(spam) > 0.2
    lorem = make_sample.page_text("en-lorem").lower()
    assert lorem.count("lorem ipsum") >= 2 and "consectetur" in lorem
    links = make_sample.fragment("en-links")
    assert links.count("<li><a ") >= 20
    assert len(words(make_sample.page_text("en-links"))) / links.count("<li>") < 3
    assert len(words(make_sample.page_text("en-short"))) < 50
    kinds = {row["expect"]["low-quality"] for row in MANIFEST if "low-quality" in row["expect"]}
    assert len(kinds) == 4


def test_consent_signals_exactly_where_declared(responses):
    meta_noai = re.compile(r'<meta name="robots" content="[^"]*\bnoai\b')
    tdm = '<meta name="tdm-reservation" content="1">'
    for row in MANIFEST:
        if not row["page"] or "malformed" in row["expect"] or row["record"] != "response":
            continue
        rec = responses[row["id"]]
        html_text = decoded_html(rec, row)
        header = rec.http.get_header("X-Robots-Tag") or ""
        expected = row["expect"].get("consent-optout", "")
        assert bool(meta_noai.search(html_text)) == ("noai" in expected and "meta" in expected)
        assert ("noai" in header) == expected.startswith("X-Robots-Tag")
        assert (tdm in html_text) == ("tdm-reservation" in expected)
    assert sum("consent-optout" in row["expect"] for row in MANIFEST) == 3


# ------------------------------------------------------------------------------------------------
# Charsets and HTTP encodings
# ------------------------------------------------------------------------------------------------

def _declares_charset_in_html(raw: bytes) -> bool:
    head = raw[:2000].lower()
    return b"<meta charset" in head or b"http-equiv=\"content-type\"" in head


def test_windows_1252_page_declared_only_in_meta(responses):
    rec = responses["de-wanderung"]
    with pytest.raises(UnicodeDecodeError):
        rec.content.decode("utf-8")
    assert rec.http.get_header("Content-Type") == "text/html"
    assert b'<meta charset="windows-1252">' in rec.content
    text = rec.content.decode("cp1252")
    assert "28 €" in text and "Café" in text and "Hütten" in text
    assert "€" not in rec.content.decode("latin-1"), "0x80 means € only in windows-1252"


def test_iso_8859_2_page_declared_only_in_http_header(responses):
    rec = responses["pl-pierogi"]
    with pytest.raises(UnicodeDecodeError):
        rec.content.decode("utf-8")
    assert rec.http.get_header("Content-Type") == "text/html; charset=ISO-8859-2"
    assert not _declares_charset_in_html(rec.content)
    text = rec.content.decode("iso-8859-2")
    assert "kapustą" in text and "łyżkę" in text
    assert "kapustą" not in rec.content.decode("cp1252", errors="replace")


def test_shift_jis_page_declared_only_in_http_equiv(responses):
    rec = responses["ja-nikujaga"]
    with pytest.raises(UnicodeDecodeError):
        rec.content.decode("utf-8")
    assert rec.http.get_header("Content-Type") == "text/html"
    assert b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">' in rec.content
    assert "肉じゃが" in rec.content.decode("shift_jis")


def test_utf8_page_without_any_declaration(responses):
    rec = responses["es-viaje"]
    text = rec.content.decode("utf-8")
    assert rec.http.get_header("Content-Type") == "text/html"
    assert not _declares_charset_in_html(rec.content)
    assert "Albarracín" in text and "cuestas" in text


def test_gzip_content_encoding_kept_on_the_payload(responses):
    rec = responses["fr-fete"]
    assert rec.http.get_header("Content-Encoding") == "gzip"
    assert rec.raw[:2] == b"\x1f\x8b"
    assert int(rec.http.get_header("Content-Length")) == len(rec.raw)
    assert "la fête du pain" in rec.content.decode("utf-8")  # warcio decodes it
    assert gzip.decompress(rec.raw) == rec.content


def test_chunked_transfer_encoding_round_trips(responses):
    rec = responses["zh-tomato"]
    assert rec.http.get_header("Transfer-Encoding") == "chunked"
    assert rec.http.get_header("Content-Length") is None
    assert re.match(rb"^[0-9a-f]+\r\n<!DOCTYPE html>", rec.raw)
    assert rec.raw.endswith(b"0\r\n\r\n")
    text = rec.content.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "阳台种番茄全攻略" in text


# ------------------------------------------------------------------------------------------------
# Non-HTML, non-200, truncated, revisit
# ------------------------------------------------------------------------------------------------

def test_non_html_payloads_are_valid(responses):
    pdf = responses["pdf"].content
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    xref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[xref:xref + 4] == b"xref"
    assert json.loads(responses["json"].content)["town"] == "Harbour Town"
    png = responses["png"].content
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
    idat_len = int.from_bytes(png[33:37], "big")
    assert png[37:41] == b"IDAT"
    assert len(zlib.decompress(png[41:41 + idat_len])) == 16 * (1 + 16 * 3)
    for fid in ("pdf", "json", "png"):
        assert responses[fid].http.get_header("Content-Type").startswith(BY_ID[fid]["mime"])


def test_error_and_redirect_statuses(responses):
    assert responses["en-404"].http.get_statuscode() == "404"
    assert "Page not found" in responses["en-404"].content.decode("utf-8")
    redirect = responses["redirect"]
    assert redirect.http.get_statuscode() == "301"
    assert redirect.http.get_header("Location") == BY_ID["en-soup"]["url"]


def test_truncated_response(responses):
    rec = responses["en-bread"]
    assert rec.h("WARC-Truncated") == "length"
    assert len(rec.content) < int(rec.http.get_header("Content-Length"))
    assert not rec.content.rstrip().endswith(b"</html>")


def test_revisit_points_at_the_original(responses):
    rec = responses["de-radwege~revisit"]
    original = responses["de-radwege"]
    assert rec.type == "revisit" and rec.content == b""
    assert rec.h("WARC-Profile").endswith("/revisit/identical-payload-digest")
    assert rec.h("WARC-Payload-Digest") == original.h("WARC-Payload-Digest")
    assert rec.h("WARC-Refers-To") == original.h("WARC-Record-ID")
    assert rec.h("WARC-Refers-To-Target-URI") == original.h("WARC-Target-URI")
    assert rec.h("WARC-Refers-To-Date") == original.h("WARC-Date")


def test_readme_matches_the_manifest():
    readme = README.read_text(encoding="utf-8")
    assert make_sample.readme_table() in readme
    broken = next(row for row in MANIFEST if "malformed" in row["expect"])
    assert re.findall(r"byte offset (\d+)", readme) == [str(broken["offset"])]
    assert re.findall(r"offset (\d+), reason", readme) == [str(broken["offset"])]
    assert broken["record_id"] in readme
