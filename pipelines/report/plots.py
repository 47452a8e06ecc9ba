"""Plots as inline SVG, built by hand (no plotting library, nothing fetched when viewed).

Every label is escaped with ``markupsafe.escape`` before it enters the SVG, so a language code or
rule name taken from the data cannot inject markup; the functions return ``Markup`` for the
template.  Charts carry a ``<title>`` (tooltip and accessible name) per bar or point.
"""
from __future__ import annotations

import math
from typing import Sequence

from markupsafe import Markup, escape

FONT = 'font-family="system-ui, sans-serif" font-size="11"'
BAR = "#4c78a8"
BAR_ALT = "#9ecae9"
THRESHOLD = "#d62728"


def _num(v: float) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3g}"
    v = int(v)
    return f"{v:,}" if abs(v) < 10_000 else f"{v / 1000:,.0f}k" if abs(v) < 10_000_000 else f"{v / 1e6:,.0f}M"


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" {FONT}>'
                  + "".join(body) + "</svg>")


def hbar(items: Sequence[tuple[str, float]], *, label: str, width: int = 640, value_fmt=_num,
         colors: Sequence[str] | None = None) -> Markup:
    """Horizontal bars, one per (label, value), longest = full width."""
    if not items:
        return Markup("")
    row, right = 22, 70
    left = min(360, max(80, 7 * max(len(str(name)) for name, _ in items) + 12))
    top = max((v for _, v in items), default=0) or 1
    body = []
    for i, (name, value) in enumerate(items):
        y = i * row + 4
        w = max(1.0, (width - left - right) * (value or 0) / top) if value else 0
        color = colors[i] if colors else BAR
        text = escape(str(name))
        body.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{text}</text>'
                    f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{color}">'
                    f'<title>{text}: {escape(value_fmt(value))}</title></rect>'
                    f'<text x="{left + w + 4:.1f}" y="{y + 13}">{escape(value_fmt(value))}</text>')
    return _svg(width, len(items) * row + 8, body, label)


def _edge_label(v: float) -> str:
    if math.isinf(v):
        return "∞"
    return _num(int(v) if float(v).is_integer() else round(v, 3))


def histogram(edges: Sequence[float], counts: Sequence[int], threshold: float | None, *, label: str,
              width: int = 420, height: int = 150, title: str = "") -> Markup:
    """Equal-width bars per bin (bins may be uneven: labels show their edges); the threshold is a
    red line placed inside its bin by linear interpolation."""
    n = len(counts)
    if not n:
        return Markup("")
    left, bottom, top_pad = 40, 30, 18
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max(counts) or 1
    bw = plot_w / n
    body = [f'<text x="{left}" y="12" font-weight="600">{escape(title)}</text>'] if title else []
    body.append(f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
                'stroke="#999"/>')
    body.append(f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{_num(top)}</text>')
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = left + i * bw
        lo, hi = edges[i], edges[i + 1]
        body.append(f'<rect x="{x + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                    f'height="{h:.1f}" fill="{BAR}"><title>[{escape(_edge_label(lo))}, '
                    f'{escape(_edge_label(hi))}): {c:,} documents</title></rect>')
    step = max(1, n // 6)
    for i in range(0, n + 1, step):
        x = left + i * bw
        body.append(f'<text x="{x:.1f}" y="{height - 14}" text-anchor="middle">{escape(_edge_label(edges[i]))}</text>')
    if threshold is not None and not (isinstance(threshold, float) and math.isnan(threshold)):
        pos = None
        for i in range(n):
            lo, hi = edges[i], edges[i + 1]
            if lo <= threshold < hi or (i == n - 1 and threshold >= hi):
                frac = 0.5 if math.isinf(hi) else min(1.0, (threshold - lo) / (hi - lo))
                pos = left + (i + frac) * bw
                break
        if pos is None and threshold < edges[0]:
            pos = left
        if pos is not None:
            body.append(f'<line x1="{pos:.1f}" y1="{top_pad - 4}" x2="{pos:.1f}" y2="{top_pad + plot_h}" '
                        f'stroke="{THRESHOLD}" stroke-width="2" stroke-dasharray="4 2"><title>threshold '
                        f'{escape(_num(threshold))}</title></line>'
                        f'<text x="{pos + 3:.1f}" y="{top_pad + 6}" fill="{THRESHOLD}">'
                        f'{escape(_num(threshold))}</text>')
    return _svg(width, height, body, label)


def lines(series: dict[str, Sequence[tuple[float, float]]], *, label: str, x_label: str, y_label: str,
          width: int = 640, height: int = 240) -> Markup:
    """A line per series (step -> value), shared axes."""
    points = [p for s in series.values() for p in s if p[1] is not None and math.isfinite(p[1])]
    if not points:
        return Markup("")
    left, bottom, top_pad, right = 50, 34, 10, 110
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def xy(x, y):
        return left + plot_w * (x - x0) / (x1 - x0), top_pad + plot_h * (1 - (y - y0) / (y1 - y0))

    colors = [BAR, THRESHOLD, "#2ca02c", "#ff7f0e"]
    body = [f'<rect x="{left}" y="{top_pad}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
            f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{escape(f"{y1:.3g}")}</text>',
            f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">{escape(f"{y0:.3g}")}</text>',
            f'<text x="{left}" y="{height - 16}">{escape(_num(x0))}</text>',
            f'<text x="{left + plot_w}" y="{height - 16}" text-anchor="end">{escape(_num(x1))}</text>',
            f'<text x="{left + plot_w / 2}" y="{height - 3}" text-anchor="middle">{escape(x_label)}</text>',
            f'<text x="12" y="{top_pad + plot_h / 2}" transform="rotate(-90 12 {top_pad + plot_h / 2})" '
            f'text-anchor="middle">{escape(y_label)}</text>']
    for i, (name, pts) in enumerate(series.items()):
        pts = [p for p in pts if p[1] is not None and math.isfinite(p[1])]
        if not pts:
            continue
        color = colors[i % len(colors)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y) in enumerate(xy(*p) for p in pts))
        body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6"><title>{escape(name)}</title></path>')
        body.append(f'<text x="{left + plot_w + 6}" y="{top_pad + 14 + 14 * i}" fill="{color}">{escape(name)}</text>')
    return _svg(width, height, body, label)
