"""`phasecheck inspect`: findings per check, failing examples, token rows highlighted, interactive prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phasecheck.cli import cli
from phasecheck.reports import write_reports
from phasecheck.reports.inspect import Inspector
from support import TOKEN, failing_verdict, write_samples


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    evil = {
        "example_id": "ex-evil",
        "run": 0,
        "index": 0,
        "seed": 0,
        "outcome": "wrong",
        "correct": False,
        "reward": -1.0,
        "scenario": "unknown_tag",
        "prompt": "p",
        "completion": f"\x1b[2J\x1b]0;owned\x07 uses {TOKEN} here",
        "detail": "",
    }
    write_samples(tmp_path, extra=[evil])
    return write_reports(failing_verdict(), tmp_path, ["json"])["json"]


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_check_shows_findings_and_failing_examples(saved):
    res = invoke("inspect", str(saved), "--check", "stability", "--limit", "3")
    assert res.exit_code == 0
    assert "stability: Is the correct pattern identified and stable?" in res.output
    assert "status: fail (blocking)  agreement 62% (95% CI 55–69%)" in res.output
    assert "failing samples for stability, first 3:" in res.output
    # only the regressed prompt's failures, never a correct sample
    listed = [line for line in res.output.splitlines() if line.startswith("- ")]
    assert len(listed) == 3 and all(line.startswith("- ex-003 [") and "[correct]" not in line for line in listed)


def test_token_rows_are_highlighted_and_terminal_safe(saved):
    res = invoke("inspect", str(saved), "--token", TOKEN, "--limit", "500")
    assert res.exit_code == 0
    assert f"With >>{TOKEN}<< = 0.8" in res.output
    assert "\x1b" not in res.output and "\\x1b[2J\\x1b]0;owned\\x07 uses >>golden_hour_sun<< here" in res.output
    n_rows = sum(1 for line in res.output.splitlines() if line.startswith("- "))
    assert n_rows == int(res.output.split()[0]) == 145


def test_token_highlight_uses_colour_when_asked(saved):
    insp = Inspector(failing_verdict(), saved.parent, color=True)
    assert f"\x1b[1;7m{TOKEN}\x1b[0m" in insp.token(TOKEN, limit=1)


def test_unknown_check_is_a_usage_error(saved):
    res = CliRunner().invoke(cli, ["inspect", str(saved), "--check", "stabilty"])
    assert res.exit_code == 2
    assert "did you mean 'stability'?" in res.output


def test_missing_verdict_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(cli, ["inspect", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "no such verdict file" in res.output


def test_without_a_tty_prints_an_overview(saved):
    res = invoke("inspect", str(saved))
    assert res.exit_code == 0
    assert " 2. [✗] contamination: 1 ungrounded token" in res.output
    assert "contamination: Do you have correct examples you trust?" in res.output
    assert "More: --check ID" in res.output


def test_interactive_pick_a_check_then_a_finding(saved):
    # contamination (2) -> finding 1 (token rows) -> back -> base_model by id -> failing examples -> quit
    res = invoke("inspect", str(saved), "--interactive", "--limit", "2", input="2\n1\nb\nbase_model\nf\nq\n")
    assert res.exit_code == 0, res.output
    assert f"rows carry '{TOKEN}', first 2:" in res.output and f">>{TOKEN}<<" in res.output
    assert "failing samples for base_model, first 2:" in res.output
    assert res.output.count("Check (number or id; q quits)") == 2


def test_interactive_survives_bad_input(saved):
    res = invoke("inspect", str(saved), "--interactive", input="nonsense\n3\n9\nb\nq\n")
    assert res.exit_code == 0
    assert "no such check in the verdict" in res.output and "no finding '9'" in res.output
