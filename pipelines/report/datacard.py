"""``datacard.md``: a datasheet for the produced corpus (Gebru et al., "Datasheets for Datasets").

The seven headings of the datasheet, each filled with the facts the run records; what only the
dataset's owner can know (why it was made, who funds it, licences, contact) is marked
``[TO FILL IN]`` with the question to answer.  No page text appears here: only counts, names and
settings, with Markdown-significant characters escaped so a value cannot restructure the card.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

FILL = "**[TO FILL IN]**"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def md(value: Any) -> str:
    """A value as inert Markdown text (one line, specials escaped)."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def _n(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return md(value)


def render_datacard(m: Mapping[str, Any]) -> str:
    p = m["provenance"]
    ext, ref, tok = m.get("extract"), m.get("refine"), m.get("tokens")
    out: list[str] = [f"# Datasheet: {md(p.get('snapshot') or p['run'])}", "",
                      f"Generated {md(p['generated'])} by `python -m pipelines report` from the run's summaries. "
                      f"Sections marked {FILL} can only be answered by the dataset's owner.", ""]

    out += ["## Motivation", "",
            f"- Why was this dataset created, and for which task? {FILL}",
            f"- Who created it, on behalf of whom, and who funded it? {FILL}",
            "- It was produced by the corpus pipeline: web pages in WARC files → text extraction → language, "
            "quality, toxicity, PII and consent filters → deduplication → tokenization.", ""]

    out += ["## Composition", ""]
    if ref:
        out.append(f"- Documents: {_n(ref.get('kept'))} kept of {_n(ref.get('documents_in'))} extracted documents "
                   f"that reached the filters.")
        langs = m.get("languages") or []
        if langs:
            out += ["", "| language | documents seen | kept after all steps | kept share (filters) |",
                    "|---|---:|---:|---:|"]
            out += [f"| {md(r['lang'])} | {_n(r['documents'])} | {_n(r['kept_final'])} | {100 * r['kept_share']:.1f}% |"
                    for r in langs]
            out.append("")
    if tok:
        splits = ", ".join(f"{md(s['split'])} {_n(s.get('tokens'))} tokens / {_n(s.get('documents'))} documents"
                           for s in tok["splits"])
        out.append(f"- Tokens: {_n(tok['total'])} ({splits}); tokenizer vocabulary "
                   f"{_n((tok.get('tokenizer') or {}).get('vocab_size'))}.")
    pii = (m.get("pii") or {}).get("redacted_total") or {}
    out.append("- Personal data: detected PII was replaced by placeholders in kept text"
               + (f" ({', '.join(f'{md(k)} {_n(v)}' for k, v in sorted(pii.items()))})." if pii else "."))
    out += [f"- Does the data contain content that might be offensive, or that relates to people? {FILL} "
            "(see the toxicity audit in report.html).", f"- Labels or targets: none (raw text for language modelling).",
            ""]

    out += ["## Collection process", ""]
    if ext:
        out.append(f"- Source: {md(p.get('input') or '–')}; {_n(ext.get('input_files'))} input file(s)"
                   + (f", {_n(p['warcs'])} WARC file(s) listed" if p.get("warcs") is not None else "")
                   + (f", snapshot {md(p['snapshot'])}" if p.get("snapshot") else "") + ".")
        out.append(f"- Records read: {_n(ext.get('records_read'))}; documents extracted: {_n(ext.get('kept'))}; "
                   f"dead letters: {_n(ext.get('dead_lettered'))}.")
    dates = ", ".join(f"{md(k)} {md(v)}" for k, v in p.get("dates", {}).items() if v)
    if dates:
        out.append(f"- Processing dates: {dates}.")
    out += [f"- Over what time frame were the pages crawled, and by whom? {FILL} (Common Crawl snapshots "
            "state their crawl dates.)", f"- Were the people whose pages are included notified or asked? {FILL}"]
    consent = m.get("consent")
    if consent:
        removed = ", ".join(f"{md(k)} {_n(v)}" for k, v in sorted(consent["removed"].items())) or "none"
        out.append(f"- Opt-outs honoured: pages signalling noai/TDM reservation"
                   f"{' and hosts disallowing AI agents in robots.txt' if consent.get('robots') else ''} "
                   f"(dropped on {md(', '.join(consent.get('drop_on') or []) or 'nothing')}); removed: {removed}.")
    out.append("")

    out += ["## Preprocessing / cleaning / labeling", ""]
    if ref:
        removed = ", ".join(f"{md(k)} {_n(v)}" for k, v in sorted((ref.get("removed_by") or {}).items(),
                                                                    key=lambda kv: -kv[1]))
        out.append(f"- Filters removed {_n(ref.get('removed'))} documents: {removed or 'none'}.")
        if m.get("dedup"):
            st = m["dedup"]["stats"]
            out.append(f"- Deduplication removed {_n(ref.get('removed_by_dedup'))} documents "
                       f"(URL {_n(st.get('url_removed'))}, near-duplicate {_n(st.get('minhash_removed'))}).")
        out.append(f"- Config hash {md(p.get('config_hash_run') or p['config_hash_used'])}; signals_version "
                   f"{md(p.get('signals_version') or '–')}; code {md(p['code_version'])}.")
    dc = m.get("decontamination")
    if dc:
        hits = ", ".join(f"{md(k)} {_n(v.get('documents_hit'))} documents" for k, v in dc["benchmarks"].items())
        out.append(f"- Benchmark decontamination ({_n(dc.get('ngram'))}-grams, action {md(dc.get('action') or '–')}): "
                   f"{hits or 'no benchmarks listed'}.")
    out += ["- The raw extracted documents are kept next to this card (`extracted/`), as are the removed ones "
            "with their reasons (`refined/removed/`).", ""]

    out += ["## Uses", "",
            f"- Intended uses: {FILL}",
            f"- Uses to avoid (e.g. anything needing the removed languages or content types): {FILL}",
            "- Known skews: see the per-language kept shares and the toxicity audit in report.html.", ""]
    out += ["## Distribution", "",
            f"- How and to whom will it be distributed, under which licence or terms of use? {FILL}",
            "- Web pages keep their authors' copyright; opt-outs found at crawl time were honoured (above).", ""]
    out += ["## Maintenance", "",
            f"- Who maintains the dataset, and how can they be contacted? {FILL}",
            f"- Will it be updated (e.g. one snapshot a month), and how are removal requests handled? {FILL}", ""]
    return "\n".join(out)
