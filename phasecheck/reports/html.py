"""The self-contained HTML report for leads: jinja2 with autoescape on, inline CSS and SVG, one small
inline script (filters) pinned by a CSP hash. All model text is escaped; large runs are sampled down."""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from markupsafe import Markup, escape
from pydantic import Field

from ..names import CURVES, CheckId, CheckMetric, Metric
from ..results import Status, Verdict, band, pct
from ..strict import Strict
from .base import Reporter
from .common import (
    advisory,
    coverage_ends,
    cut,
    find_check,
    grading_note,
    load_samples,
    load_training_metrics,
    phase_label,
    row_id,
    sample_down,
    split_on_token,
    token_rows,
)
from .svg import bar_chart, k_chart, line_chart

__all__ = ["HtmlReporter", "highlight"]

# The only script in the page; it just hides rows, so the page reads the same without it.
FILTER_SCRIPT = """
(function () {
  var o = document.getElementById('f-outcome'), s = document.getElementById('f-scenario');
  var n = document.getElementById('f-count');
  if (!o || !s) return;
  function apply() {
    var rows = document.querySelectorAll('#samples tbody tr'), shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var ok = (!o.value || r.getAttribute('data-outcome') === o.value) &&
               (!s.value || r.getAttribute('data-scenario') === s.value);
      r.hidden = !ok; if (ok) shown++;
    }
    n.textContent = shown + ' shown';
  }
  o.addEventListener('change', apply); s.addEventListener('change', apply);
  document.getElementById('filters').hidden = false;
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(FILTER_SCRIPT.encode("utf-8")).digest()).decode("ascii")
_STATUS_SYMBOL = {Status.PASS: "✓", Status.FAIL: "✗", Status.WARN: "!", Status.SKIP: "–", Status.ERROR: "E"}


def highlight(text: str, token: str, *, window: int | None = None) -> Markup:
    """`text` escaped, each occurrence of `token` wrapped in <mark>; cut to `window` chars around the first."""
    if window is not None and len(text) > 2 * window:
        at = max(text.find(token), 0) if token else 0
        start, end = max(0, at - window), min(len(text), at + len(token) + window)
        text = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
    return Markup("").join(
        Markup("<mark>{}</mark>").format(p) if hit else escape(p) for p, hit in split_on_token(text, token)
    )


class HtmlReporter(Reporter):
    """One HTML file a lead can open offline, review and sign off."""

    filename: ClassVar[str] = "report.html"

    class Params(Strict):
        max_samples: int = Field(300, ge=1, description="Samples shown in the browser; more are sampled down.")
        max_chars: int = Field(1500, ge=80, description="Characters of a prompt or completion shown before cutting.")
        rows_per_token: int = Field(5, ge=1, description="Example rows shown under each contamination token.")

    def render(self, verdict: Verdict, *, out_dir: Path | None = None, verbose: int = 0) -> str:
        from jinja2 import Environment, PackageLoader, select_autoescape

        env = Environment(
            loader=PackageLoader("phasecheck.reports", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["pct"] = pct
        env.filters["num"] = _num
        env.filters["cut"] = self._cut
        return env.get_template("report.html.j2").render(**self.context(verdict, out_dir))

    def context(self, verdict: Verdict, out_dir: Path | None) -> dict[str, Any]:
        samples = load_samples(verdict, out_dir)
        return {
            "v": verdict,
            "phase": phase_label(verdict.status),
            "phase_class": verdict.status.value.lower(),
            "checks": [{"c": c, "symbol": _STATUS_SYMBOL[c.status], "advisory": advisory(c)} for c in verdict.checks],
            "charts": self._charts(verdict),
            "coverage": _coverage(verdict),
            CheckId.CONTAMINATION: self._contamination(verdict, out_dir),
            "browser": self._browser(samples),
            "curves": self._curves(verdict, out_dir),
            "command": shlex.join(verdict.command) if verdict.command else "",
            "compare": verdict.compare,
            "grading_note": grading_note(verdict),
            "script": Markup(FILTER_SCRIPT),
            "script_hash": _SCRIPT_HASH,
        }

    def _cut(self, text: Any) -> str:
        return cut(text, self.params.max_chars)

    @staticmethod
    def _charts(verdict: Verdict) -> dict[str, Any]:
        charts: dict[str, Any] = {}
        base = find_check(verdict, CheckId.BASE_MODEL)
        m = base.metrics if base else {}
        threshold = m.get(CheckMetric.THRESHOLD)
        runs = m.get(CheckMetric.PER_RUN_ACCURACY) or []
        if runs:
            cis = m.get(CheckMetric.PER_RUN_ACCURACY_CI) or [None] * len(runs)
            charts["runs"] = bar_chart(
                [
                    (f"run {i + 1}" + (f" [{band(*ci)}]" if ci else ""), float(a), None)
                    for i, (a, ci) in enumerate(zip(runs, cis))
                ],
                threshold=threshold,
                title="Accuracy per sampled run",
            )
        per = m.get(CheckMetric.PER_SCENARIO) or {}
        before = (verdict.compare or {}).get("per_scenario_accuracy") or {}
        if per:
            items = []
            for name in sorted(per, key=lambda s: (per[s].get("accuracy", 0), s)):
                old = (before.get(name) or {}).get("old")
                items.append((f"{name} (n={per[name].get('n', '?')})", per[name].get("accuracy"), old))
            has_old = any(i[2] is not None for i in items)
            charts["scenarios"] = bar_chart(
                items,
                threshold=threshold,
                title="Accuracy per scenario",
                legend=("now", "earlier verdict") if has_old else None,
            )
        vs = find_check(verdict, CheckId.VALIDATED_SET)
        vper = (vs.metrics.get(CheckMetric.PER_SCENARIO) if vs else None) or {}
        if vper:
            charts["validated"] = [{"scenario": s, **v} for s, v in sorted(vper.items())]
        return charts

    def _contamination(self, verdict: Verdict, out_dir: Path | None) -> list[dict[str, Any]]:
        check = find_check(verdict, CheckId.CONTAMINATION)
        if not check:
            return []
        out = []
        for f in check.findings:
            token = str(f.data.get("token", ""))
            rows = token_rows(verdict, token, out_dir, f.example_ids, limit=self.params.rows_per_token) if token else []
            out.append(
                {
                    "f": f,
                    "d": f.data,
                    "token": token,
                    "rows": [
                        {
                            "id": row_id(r),
                            "artifact": r["artifact"],
                            "outcome": r.get("outcome"),
                            "text": highlight(str(r.get("completion", "")), token, window=240),
                        }
                        for r in rows
                    ],
                }
            )
        return out

    def _browser(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        shown = sample_down(samples, self.params.max_samples)
        outcomes = Counter(str(s.get("outcome", "")) for s in samples)
        scenarios = Counter(str(s.get("scenario") or "") for s in samples)
        groups = {(str(s.get("outcome")), str(s.get("scenario"))) for s in samples}
        groups_shown = {(str(s.get("outcome")), str(s.get("scenario"))) for s in shown}
        return {
            "rows": shown,
            "total": len(samples),
            "shown": len(shown),
            "groups": len(groups),
            "groups_shown": len(groups_shown),
            "outcomes": sorted(outcomes.items()),
            "scenarios": sorted(scenarios.items()),
            "failures": sum(1 for s in samples if s.get("outcome") != "correct"),
        }

    @staticmethod
    def _curves(verdict: Verdict, out_dir: Path | None) -> list[Markup]:
        rows = load_training_metrics(verdict, out_dir)
        charts = []
        for key, title, std_key in CURVES:
            pts = [(float(r[Metric.STEP]), float(r[key])) for r in rows if isinstance(r.get(key), (int, float))]
            if len(pts) < 2:
                continue
            band = None
            if std_key and all(isinstance(r.get(std_key), (int, float)) for r in rows if key in r):
                band = [float(r[std_key]) for r in rows if isinstance(r.get(key), (int, float))]
            charts.append(line_chart(pts, title=title, band=band))
        return charts


def _coverage(verdict: Verdict) -> dict[str, Any] | None:
    """The diversity check's pass@k and pass^k curves as a chart (the earlier verdict's dashed), the numbers at
    both ends, and the finding that says what changed since the earlier verdict."""
    check = find_check(verdict, CheckId.DIVERSITY)
    m = check.metrics if check else {}
    now = m.get(CheckMetric.COVERAGE) or []
    if not now:
        return None
    before = m.get(CheckMetric.COVERAGE_BEFORE) or []

    def pts(curve: list[dict], key: str) -> list[tuple[int, float, float, float]]:
        return [(int(p["k"]), float(p[key]), *map(float, p[key + "_ci"])) for p in curve]

    series = [
        ("pass@k", "at", False, pts(now, "pass_at_k")),
        ("pass^k (all k correct)", "hat", False, pts(now, "pass_hat_k")),
    ]
    if before:
        series += [
            ("pass@k earlier", "at", True, pts(before, "pass_at_k")),
            ("pass^k earlier", "hat", True, pts(before, "pass_hat_k")),
        ]
    last = now[-1]
    note = "Shaded: 95% intervals, prompts as clusters" + ("; dashed: the earlier verdict" if before else "")
    change = next((f.message for f in check.findings if CheckMetric.COVERAGE_CHANGE in f.data), None)
    return {
        "chart": k_chart(series, title="pass@k and pass^k against k", legend_note=note),
        "ends": coverage_ends(now),
        "m": last["k"],
        "thinned": len(now) < last["k"],
        "dense": sum(1 for i, p in enumerate(now) if p["k"] == i + 1),
        "change": change,
    }


def _num(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "n/a" if v is None else str(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:.3g}"
