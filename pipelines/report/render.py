"""Render the report model to one self-contained HTML file (Jinja2, autoescape on).

All text from the run goes through Jinja2's autoescaping (``<script>`` in a page shows as text);
SVG plots come from ``plots`` (which escapes its labels) and are the only markup marked safe,
together with the one inline script below.  A Content-Security-Policy meta tag forbids every
network fetch and every script but that one (by hash), so even markup that slipped through
could neither run nor load anything.
"""
from __future__ import annotations

import base64
import hashlib
import math
from pathlib import Path
from typing import Any, Mapping

import jinja2
from markupsafe import Markup

import pipelines.report.plots as plots

TEMPLATES = Path(__file__).resolve().parent / "templates"
TOP_LANGS = 4

# Click a table header to sort by that column (numbers numerically).
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.title = "click to sort";
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.dataset.sort !== "asc";
    th.parentNode.querySelectorAll("th").forEach(function (h) { delete h.dataset.sort; });
    th.dataset.sort = asc ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    function key(r) {
      var t = (r.cells[idx] ? r.cells[idx].textContent : "").trim();
      var n = parseFloat(t.replace(/[,%\\u2212]/g, function (c) { return c === "\\u2212" ? "-" : ""; }));
      return isNaN(n) ? t.toLowerCase() : n;
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x < y) { return asc ? -1 : 1; }
      if (x > y) { return asc ? 1 : -1; }
      return 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if not value.is_integer() or abs(value) < 1:
            return f"{value:.4g}"
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = num
    env.filters["pct"] = pct
    return env


def _whatif_plots(item: dict, languages: list[str]) -> dict:
    spec = item["spec"]
    out = {"all": plots.histogram(item["edges"], item["hist_all"], item["threshold"],
                                  label=f"distribution of {spec.label}", title="all languages")}
    per = []
    if spec.by_language:
        for lang in languages:
            counts = item["hist"].get(lang)
            if counts and sum(counts):
                t = item["language_thresholds"].get(lang, item["threshold"])
                per.append(plots.histogram(item["edges"], counts, t, width=260, height=120,
                                           label=f"{spec.label}, language {lang}", title=f"{lang}"))
    out["languages"] = per
    return out


def charts(model: Mapping[str, Any]) -> dict:
    c: dict[str, Any] = {}
    if model.get("funnel"):
        c["funnel"] = plots.hbar([(s["step"], s["documents"]) for s in model["funnel"]],
                                 label="documents left after each step", width=760)
    langs = [r["lang"] for r in (model.get("languages") or [])][:TOP_LANGS]
    if model.get("languages"):
        c["languages"] = plots.hbar([(r["lang"], r["kept_final"]) for r in model["languages"][:15]],
                                    label="documents kept per language")
    c["whatif"] = {item["id"]: _whatif_plots(item, langs) for item in (model.get("whatif") or [])}
    dedup = model.get("dedup")
    if dedup and dedup["cluster_sizes"]:
        c["clusters"] = plots.hbar([(f"{size} documents", n) for size, n in dedup["cluster_sizes"].items()],
                                   label="duplicate clusters by size")
    tokens = model.get("tokens")
    if tokens and tokens.get("per_document"):
        pd = tokens["per_document"]
        c["tokens_per_doc"] = plots.histogram(pd["edges"], pd["counts"], None, width=560,
                                              label="tokens per document", title="documents by token count")
    training = model.get("training")
    if training and (training["train"] or training["val"]):
        c["training"] = plots.lines({"train loss": training["train"], "validation loss": training["val"]},
                                    label="training curve", x_label="step", y_label="loss")
    return c


def script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def render_html(model: Mapping[str, Any]) -> str:
    template = _env().get_template("report.html.j2")
    return template.render(m=model, charts=charts(model), script=Markup(SCRIPT), script_hash=script_hash(SCRIPT))
