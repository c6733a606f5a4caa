"""`phasecheck report`: re-renders a saved verdict in every format, with --out and --compare, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from phasecheck.cli import cli
from phasecheck.reports import write_reports
from phasecheck.results import Phase, Status
from support import failing_verdict, write_samples


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    write_samples(tmp_path)
    return write_reports(failing_verdict(), tmp_path, ["json"])["json"]


def test_report_text_to_stdout(saved):
    res = CliRunner().invoke(cli, ["report", str(saved)])
    assert res.exit_code == 0
    assert res.output.startswith("Checking graduation criteria...\n[✓] Can you construct")
    assert "→ Status: GRPO PHASE" in res.output


@pytest.mark.parametrize(
    "fmt, check",
    [
        ("json", lambda text: json.loads(text)["status"] == "GRPO_PHASE"),
        ("junit", lambda text: ET.fromstring(text.encode()).find("testsuite").get("failures") == "3"),
        ("html", lambda text: text.startswith("<!DOCTYPE html>") and 'id="samples-browser"' in text),
        ("text", lambda text: "[✗] Has the model completed the task reliably?" in text),
    ],
)
def test_report_every_format_to_a_file(saved, tmp_path, fmt, check):
    out = tmp_path / "out" / f"report.{fmt}"
    res = CliRunner().invoke(cli, ["report", str(saved), "--format", fmt, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert check(out.read_text(encoding="utf-8"))
    assert "\x1b[" not in out.read_text(encoding="utf-8")


def test_report_compare_shows_changes(saved, tmp_path):
    new = failing_verdict("2025-02-01T00:00:00Z")
    new.status = Phase.GRADUATED
    new.checks[2].status = Status.PASS
    new_path = write_reports(new, tmp_path / "new", ["json"])["json"]
    res = CliRunner().invoke(cli, ["report", str(new_path), "--compare", str(saved)])
    assert res.exit_code == 0
    assert "Since 2025-01-02T03:04:05Z: GRPO PHASE → GRADUATED, 1 check changed" in res.output
    html = tmp_path / "cmp.html"
    CliRunner().invoke(cli, ["report", str(new_path), "--compare", str(saved), "--format", "html", "--out", str(html)])
    assert '<section id="compare">' in html.read_text(encoding="utf-8")


def test_report_errors_exit_2_with_one_line(saved, tmp_path):
    res = CliRunner().invoke(cli, ["report", str(saved), "--format", "htm"])
    assert res.exit_code == 2 and "did you mean 'html'?" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other/9"}')
    res = CliRunner().invoke(cli, ["report", str(bad)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and str(bad) in res.output


def test_report_imports_no_torch(saved, tmp_path):
    code = (
        "import sys\nfrom phasecheck.cli import cli\n"
        "try:\n    cli(['report', sys.argv[1], '--format', 'html', '--out', sys.argv[2]])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'math_verify', 'sympy') if m in sys.modules]\n"
        "assert not heavy, heavy\nprint('clean')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(saved), str(tmp_path / "r.html")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean" and (tmp_path / "r.html").stat().st_size > 10_000
