"""Inline SVG charts for the HTML report (no script, no external assets). Every label is escaped here."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from ..results import pct

__all__ = ["bar_chart", "line_chart"]

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
