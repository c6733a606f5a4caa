"""Inline SVG charts for the HTML report (no script, no external assets). Every label is escaped here."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from ..results import band as band_text
from ..results import pct

__all__ = ["bar_chart", "line_chart", "k_chart"]

_W = 640


def bar_chart(
    items: Sequence[tuple[str, float | None, float | None]],
    *,
    threshold: float | None = None,
    title: str,
    legend: tuple[str, str] | None = None,
) -> Markup:
    """Horizontal bars in [0, 1]: (label, value, earlier value or None). A dashed line marks the threshold."""
    row_h, left, right = 26, 200, 60
    plot = _W - left - right
    height = row_h * len(items) + 30
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value, before) in enumerate(items):
        y = 10 + i * row_h
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" class="lbl">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 2}" width="{plot}" height="18" class="track"/>')
        if before is not None:
            out.append(
                f'<rect x="{left}" y="{y + 14}" width="{plot * _clip(before):.1f}" height="6" class="before">'
                f"<title>{escape(label)} before: {pct(before)}</title></rect>"
            )
        if value is not None:
            cls = "bar ok" if threshold is None or value >= threshold else "bar bad"
            h = 11 if before is not None else 18
            out.append(
                f'<rect x="{left}" y="{y + 2}" width="{plot * _clip(value):.1f}" height="{h}" class="{cls}">'
                f"<title>{escape(label)}: {pct(value)}</title></rect>"
            )
            out.append(f'<text x="{left + plot + 6}" y="{y + 15}" class="val">{pct(value)}</text>')
        else:
            out.append(f'<text x="{left + plot + 6}" y="{y + 15}" class="val">n/a</text>')
    if threshold is not None:
        x = left + plot * _clip(threshold)
        out.append(f'<line x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{height - 18}" class="thr"/>')
        out.append(
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle" class="val">threshold {pct(threshold)}</text>'
        )
    if legend:
        out.append(
            f'<text x="4" y="{height - 4}" class="val">{escape(legend[0])} (thick) · '
            f"{escape(legend[1])} (thin grey)</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def line_chart(
    points: Sequence[tuple[float, float]], *, title: str, band: Sequence[float] | None = None, max_points: int = 400
) -> Markup:
    """One metric over training steps as a polyline; `band` (same length) draws ±std around it."""
    if len(points) > max_points:
        step = len(points) / max_points
        keep = sorted({int(i * step) for i in range(max_points)} | {len(points) - 1})
        points = [points[i] for i in keep]
        band = [band[i] for i in keep] if band else None
    w, h, left, bottom, top = 300, 150, 44, 24, 20
    xs = [p[0] for p in points]
    lo_vals = [p[1] - (band[i] if band else 0) for i, p in enumerate(points)]
    hi_vals = [p[1] + (band[i] if band else 0) for i, p in enumerate(points)]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(lo_vals), max(hi_vals)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 - x0 < 1e-12:
        x1 = x0 + 1

    def sx(x: float) -> float:
        return left + (w - left - 6) * (x - x0) / (x1 - x0)

    def sy(y: float) -> float:
        return top + (h - top - bottom) * (1 - (y - y0) / (y1 - y0))

    out = [
        f'<svg class="curve" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<text x="{left}" y="13" class="lbl">{escape(title)}</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 6}" y2="{h - bottom}" class="axis"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" class="axis"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="val">{y1:.3g}</text>',
        f'<text x="{left - 4}" y="{h - bottom}" text-anchor="end" class="val">{y0:.3g}</text>',
        f'<text x="{left}" y="{h - 8}" class="val">step {x0:g}</text>',
        f'<text x="{w - 6}" y="{h - 8}" text-anchor="end" class="val">{x1:g}</text>',
    ]
    if band:
        upper = [f"{sx(x):.1f},{sy(y + b):.1f}" for (x, y), b in zip(points, band)]
        lower = [f"{sx(x):.1f},{sy(y - b):.1f}" for (x, y), b in reversed(list(zip(points, band)))]
        out.append(f'<polygon points="{" ".join(upper + lower)}" class="band"/>')
    coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    out.append(f'<polyline points="{coords}" class="line"/>')
    out.append("</svg>")
    return Markup("".join(out))


def _clip(v: float) -> float:
    return min(1.0, max(0.0, float(v)))


# One series of k_chart: (label, css class, dashed, points as (k, value, interval low, interval high)).
KSeries = tuple[str, str, bool, Sequence[tuple[int, float, float, float]]]


def k_chart(series: Sequence[KSeries], *, title: str, legend_note: str | None = None) -> Markup:
    """Shares in [0, 1] against k on a log2 axis (ticks at powers of two and the largest k), one polyline
    per series with its interval as a band; a dashed series (an earlier verdict) gets no band. Each point
    carries a <title> with its value and interval, so the chart needs no script to be read exactly."""
    w, h, left, right, top, bottom = _W, 300, 48, 16, 44, 42
    kmax = max((p[0] for _, _, _, pts in series for p in pts), default=1)
    span = math.log2(kmax) if kmax > 1 else 1.0

    def sx(k: float) -> float:
        return left + (w - left - right) * math.log2(k) / span

    def sy(v: float) -> float:
        return top + (h - top - bottom) * (1 - _clip(v))

    out = [
        f'<svg class="kchart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{left}" y1="{sy(v):.1f}" x2="{w - right}" y2="{sy(v):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end" class="val">{pct(v)}</text>')
    ticks = [k for k in (2**i for i in range(int(span) + 1)) if sx(kmax) - sx(k) >= 24 or k == kmax]
    for k in sorted(set(ticks) | {kmax}):
        out.append(f'<line x1="{sx(k):.1f}" y1="{h - bottom}" x2="{sx(k):.1f}" y2="{h - bottom + 4}" class="axis"/>')
        out.append(f'<text x="{sx(k):.1f}" y="{h - bottom + 16}" text-anchor="middle" class="val">{k}</text>')
    out.append(f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" class="axis"/>')
    out.append(
        f'<text x="{(left + w - right) / 2:.0f}" y="{h - 6}" text-anchor="middle" class="lbl">'
        "k, samples drawn per prompt (log scale)</text>"
    )
    for label, cls, dashed, pts in series:
        if not dashed and len(pts) > 1:
            upper = [f"{sx(k):.1f},{sy(hi):.1f}" for k, _, _, hi in pts]
            lower = [f"{sx(k):.1f},{sy(lo):.1f}" for k, _, lo, _ in reversed(pts)]
            out.append(f'<polygon points="{" ".join(upper + lower)}" class="kband {cls}"/>')
        coords = " ".join(f"{sx(k):.1f},{sy(v):.1f}" for k, v, _, _ in pts)
        out.append(f'<polyline points="{coords}" class="kline {cls}{" dashed" * dashed}"/>')
        for k, v, lo, hi in pts:
            out.append(
                f'<circle cx="{sx(k):.1f}" cy="{sy(v):.1f}" r="{2 if dashed else 2.5}" class="kdot {cls}">'
                f"<title>{escape(label)}, k={k}: {pct(v)} [{band_text(lo, hi)}]</title></circle>"
            )
    out.append(_k_legend(series, left, legend_note))
    out.append("</svg>")
    return Markup("".join(out))


def _k_legend(series: Sequence[KSeries], left: int, note: str | None) -> str:
    """One row of swatches above the plot, in series order, then an optional note."""
    out, x = [], left
    for label, cls, dashed, _ in series:
        out.append(f'<line x1="{x}" y1="16" x2="{x + 22}" y2="16" class="kline {cls}{" dashed" * dashed}"/>')
        out.append(f'<text x="{x + 27}" y="20" class="val">{escape(label)}</text>')
        x += 40 + 6 * len(label)
    if note:
        out.append(f'<text x="{left}" y="36" class="val">{escape(note)}</text>')
    return "".join(out)
