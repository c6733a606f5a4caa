"""The HTML report: strict HTML5, self-contained, escaped model text (checked in a real browser), sampling-down."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import html5lib
import pytest

from phasecheck.reports import render, write_reports
from phasecheck.reports.common import compare_verdicts
from phasecheck.results import Phase, Status
from support import SCENARIOS, TOKEN, failing_verdict, write_samples

PROBE = "PWNED_MARKER_7f3a"
PAYLOADS = [
    f"<script>document.title='{PROBE}';document.body.insertAdjacentHTML('beforeend','<p id={PROBE}>')</script>",
    f"<img src=x onerror=\"document.title='{PROBE}';var p=document.createElement('p');p.id='{PROBE}';"
    f'document.body.appendChild(p)">',
    f"</textarea></pre></td></tr></table><svg onload=\"document.title='{PROBE}'\"></svg>",
]


def xss_rows() -> list[dict]:
    return [
        {
            "example_id": f"<b>x{i}</b>",
            "run": 0,
            "index": i,
            "seed": i,
            "completion": p + f" {TOKEN}",
            "finish_reason": "stop",
            "n_tokens": 9,
            "model": "m",
            "engine": "replay",
            "prompt": p,
            "reference": p,
            "scenario": "<i>evil</i>",
            "correct": False,
            "reward": -1.0,
            "outcome": "wrong",
            "detail": p,
        }
        for i, p in enumerate(PAYLOADS)
    ]


def build(tmp_path: Path, **kw) -> Path:
    write_samples(tmp_path, **kw)
    return write_reports(failing_verdict(), tmp_path, ["json", "html"])["html"]


def parse_strict(html: str) -> None:
    html5lib.HTMLParser(strict=True).parse(html)


def test_html_is_strict_html5_with_every_section(tmp_path):
    html = build(tmp_path).read_text(encoding="utf-8")
    parse_strict(html)
    for section in (
        "checklist",
        "accuracy",
        "validated",
        "contamination",
        "samples-browser",
        "training",
        "fingerprint",
    ):
        assert f'<section id="{section}">' in html, section
    assert "Status: GRPO PHASE" in html and "Do not run SFT until this status resolves." in html
    assert html.count("<polyline") == 6  # one curve per GRPO metric
    assert "run 4" in html and "unknown_tag (n=32)" in html and "threshold 80%" in html
    assert f"<mark>{TOKEN}</mark>" in html
    assert "phasecheck check --task &#39;hamiltonian geometry evaluation&#39;" in html
    assert "Showing 300 of 336 graded samples" in html


def test_html_is_self_contained(tmp_path):
    html = build(tmp_path).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    assert len(scripts) == 1 and len(scripts[0]) < 2000
    assert "script-src 'sha256-" in html  # only that script may run


def test_html_escapes_model_text(tmp_path):
    write_samples(tmp_path, extra=xss_rows())
    html = render(failing_verdict(), "html", out_dir=tmp_path)
    parse_strict(html)
    assert "<img src=x" not in html and "<svg onload" not in html and "</textarea>" not in html
    assert html.count("<script") == 1 and "<b>x0</b>" not in html and "<i>evil</i>" not in html
    assert "&lt;script&gt;document.title=" in html and "&lt;/textarea&gt;" in html
    assert f"&lt;img src=x onerror=&#34;document.title=&#39;{PROBE}&#39;" in html


def test_html_samples_down_10k_runs_deterministically_within_2mb(tmp_path):
    write_samples(tmp_path, n_examples=1250, runs=4, n=2, completion_len=400)
    first = render(failing_verdict(), "html", out_dir=tmp_path)
    assert len(first.encode("utf-8")) <= 2 * 1024 * 1024
    assert "Showing 300 of 10,000 graded samples" in first
    assert first == render(failing_verdict(), "html", out_dir=tmp_path)
    body = first.split('<table id="samples">')[1]
    shown = set(re.findall(r'data-outcome="(\w+)" data-scenario="(\w+)"', body))
    assert {s for _, s in shown} == set(SCENARIOS) and {o for o, _ in shown} == {
        "correct",
        "wrong",
        "hedged",
        "unparsed",
    }


def test_html_compare_section_and_before_bars(tmp_path):
    old = failing_verdict("2025-01-01T00:00:00Z")
    new = failing_verdict()
    new.status = Phase.GRADUATED
    new.checks[2].status = Status.PASS
    new.compare = compare_verdicts(old, new, old_path="runs/old/verdict.json")
    new.compare["regressed"] = ["ex-003", "<b>ex-9</b>"]
    html = render(new, "html", out_dir=tmp_path)
    parse_strict(html)
    assert "Prompts that regressed (2): ex-003, &lt;b&gt;ex-9&lt;/b&gt;." in html
    assert '<section id="compare">' in html and "GRPO_PHASE → GRADUATED" in html
    assert 'class="before"' in html and "earlier verdict (thin grey)" in html
    assert "banner graduated" in html


def test_html_without_artifacts_still_renders(tmp_path):
    v = failing_verdict()
    v.artifacts = {}
    html = render(v, "html", out_dir=None)
    parse_strict(html)
    assert '<section id="samples-browser">' not in html and '<section id="training">' not in html
    assert "their text is not among the saved artifacts" in html


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("chromium not installed")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={cwd / 'profile'}",
    ]
    return subprocess.run([exe, *flags, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.require_chromium
def test_chromium_screenshot_of_failing_report(tmp_path):
    report = build(tmp_path)
    png = tmp_path / "report.png"
    chromium(f"--screenshot={png}", "--window-size=1280,2000", report.as_uri(), cwd=tmp_path)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a blank page compresses far smaller


@pytest.mark.require_chromium
def test_chromium_runs_no_injected_script(tmp_path):
    write_samples(tmp_path, extra=xss_rows())
    write_reports(failing_verdict(), tmp_path, ["html"])
    proc = chromium("--dump-dom", "--virtual-time-budget=2000", (tmp_path / "report.html").as_uri(), cwd=tmp_path)
    dom = proc.stdout
    assert '<section id="samples-browser">' in dom, proc.stderr[-2000:]
    assert f'id="{PROBE}"' not in dom and f"<title>{PROBE}" not in dom
    assert "&lt;script&gt;document.title=" in dom and "&lt;/textarea&gt;" in dom
    assert '<img src="x"' not in dom and "<svg onload" not in dom
    # our own script did run: it un-hides the filters
    assert re.search(r'<div id="filters">', dom)
