"""Text, JSON and JUnit reports, write_reports and load_verdict, against a realistic failing verdict."""

from __future__ import annotations

import json
import os
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phasecheck.errors import DataError, PluginError
from phasecheck.reports import FORMATS, load_verdict, render, reporter, write_reports
from phasecheck.reports.common import compare_verdicts, sample_down
from phasecheck.reports.junit import xml_safe
from phasecheck.results import Finding, Phase, Status, Verdict
from support import SCENARIOS, failing_verdict, write_samples

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PHASECHECK_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing; run with PHASECHECK_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from golden (PHASECHECK_UPDATE_GOLDEN=1)"


def text_report(verdict: Verdict, *, unicode: bool = True, color: bool = False, verbose: int = 0) -> str:
    return reporter("text", unicode=unicode, color=color).render(verdict, verbose=verbose)


def test_text_checklist_has_the_design_shape():
    out = text_report(failing_verdict())
    lines = out.splitlines()
    assert lines[0] == "Checking graduation criteria..."
    assert lines[1] == "[✓] Can you construct a validated training set?      847 examples confirmed"
    assert lines[3] == "[✗] Has the model completed the task reliably?       1/4 runs ≥ 80% (best 83%, worst 41%)"
    assert "[✓] Will GRPO get a learning signal? (advisory)" in out
    assert "[!] Has the policy kept room to explore? (advisory)" in out
    assert lines[-3:] == [
        "→ Status: GRPO PHASE",
        "Action: Run GRPO training. Discover the correct pattern first.",
        "Do not run SFT until this status resolves.",
    ]
    assert "\x1b[" not in out


def test_text_golden_unicode_ascii_and_verbose():
    v = failing_verdict()
    check_golden("report_text.txt", text_report(v))
    check_golden("report_text_ascii.txt", text_report(v, unicode=False))
    check_golden("report_text_verbose.txt", text_report(v, verbose=1))


def test_text_ascii_fallback_is_pure_ascii():
    out = text_report(failing_verdict(), unicode=False)
    out.encode("ascii")
    assert "[OK] Can you construct" in out and "[X]  Has the model" in out and "-> Status: GRPO PHASE" in out
    assert ">= 80%" in out


def test_text_colour_only_when_asked_and_error_skip_symbols():
    v = failing_verdict()
    v.checks[4].status = Status.ERROR
    v.checks[5].status = Status.SKIP
    coloured = text_report(v, color=True)
    assert "\x1b[31m[✗]\x1b[0m" in coloured and "\x1b[1;31mGRPO PHASE\x1b[0m" in coloured
    plain = text_report(v)
    assert "[E] Will GRPO" in plain and "[-] Has the policy" in plain


def test_render_text_follows_stdout_and_no_color(monkeypatch):
    class Tty:
        encoding = "ascii"

        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = render(failing_verdict(), "text")
    assert "\x1b[" in out and "[OK]" in out and "✓" not in out
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in render(failing_verdict(), "text")


def test_verbose_lists_findings_under_their_check():
    out = text_report(failing_verdict(), verbose=1)
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "Do you have correct examples" in line)
    assert lines[at + 1].startswith("      - 'golden_hour_sun' appears in 40%")
    assert "(rows: ex-000, ex-002, ex-004, ex-006, ex-008 +15 more)" in lines[at + 1]


def test_junit_golden_and_structure():
    xml = render(failing_verdict(), "junit")
    check_golden("report_junit.xml", xml)
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "6",
        "failures": "3",
        "errors": "0",
        "skipped": "0",
    }
    assert float(suite.get("time")) == pytest.approx(13.97)
    cases = suite.findall("testcase")
    assert [c.get("name").split(":")[0] for c in cases] == [c.id for c in failing_verdict().checks]
    assert all(c.get("classname") and c.get("time") for c in cases)
    assert cases[2].find("failure").get("message") == "1/4 runs ≥ 80% (best 83%, worst 41%)"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["fingerprint.digest"] == "f" * 16 and props["fingerprint.data.train"] == "d" * 16


def test_junit_error_skip_and_forbidden_characters():
    v = failing_verdict()
    v.checks[0].status = Status.ERROR
    v.checks[0].headline = "ValueError('bad \x00\x1b row <&>')"
    v.checks[1].status = Status.SKIP
    v.checks[3].findings = [Finding(message="completion held \x0b\ufffe and </failure>]]>", example_ids=["a\x01"])]
    xml = render(v, "junit")
    root = ET.fromstring(xml.encode("utf-8"))
    suite = root.find("testsuite")
    assert (suite.get("errors"), suite.get("skipped"), suite.get("failures")) == ("1", "1", "2")
    cases = suite.findall("testcase")
    assert cases[0].find("error").get("message") == "ValueError('bad  row <&>')"
    assert cases[1].find("skipped") is not None
    assert "completion held  and </failure>]]>" in cases[3].find("failure").text
    assert xml_safe("ok\x00\ud800\U0001f600") == "ok\U0001f600"


def test_json_round_trips_through_load_verdict(tmp_path):
    v = failing_verdict()
    paths = write_reports(v, tmp_path, ["json"])
    assert paths == {"json": tmp_path / "verdict.json"}
    assert json.loads(paths["json"].read_text())["schema"] == "phasecheck.verdict/1"
    assert load_verdict(paths["json"]) == v


def test_write_reports_every_format(tmp_path):
    write_samples(tmp_path)
    paths = write_reports(failing_verdict(), tmp_path, list(FORMATS))
    assert {k: p.name for k, p in paths.items()} == {
        "text": "report.txt",
        "json": "verdict.json",
        "junit": "junit.xml",
        "html": "report.html",
    }
    assert "→ Status: GRPO PHASE" in paths["text"].read_text(encoding="utf-8")
    assert "\x1b[" not in paths["text"].read_text(encoding="utf-8")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(PluginError, match="did you mean 'junit'"):
        write_reports(failing_verdict(), tmp_path, ["junitt"])


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such verdict file"),
        ("{not json", "not valid JSON"),
        ('{"schema": "phasecheck.verdict/0"}', "schema 'phasecheck.verdict/0' is not 'phasecheck.verdict/1'"),
        ('{"schema": "phasecheck.verdict/1", "task": "x"}', "invalid verdict at status: Field required"),
        ("[1]", "expected a JSON object"),
    ],
)
def test_load_verdict_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "verdict.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as err:
        load_verdict(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_compare_verdicts_reports_status_check_and_scenario_changes():
    old = failing_verdict("2025-01-01T00:00:00Z")
    new = failing_verdict()
    new.status = Phase.GRADUATED
    new.checks[2].status = Status.PASS
    new.checks[2].metrics["per_scenario"]["unknown_tag"]["accuracy"] = 0.9
    new.fingerprint.model = "n" * 16
    diff = compare_verdicts(old, new, old_path="old/verdict.json")
    assert diff["status"] == {"old": "GRPO_PHASE", "new": "GRADUATED", "changed": True}
    assert [c["id"] for c in diff["checks"] if c["changed"]] == ["base_model"]
    assert diff["fingerprint_changed"] == ["model"]
    assert diff["per_scenario_accuracy"]["unknown_tag"] == {"old": 0.19, "new": 0.9}
    new.compare = diff
    out = text_report(new, verbose=1)
    assert "Since 2025-01-01T00:00:00Z: GRPO PHASE → GRADUATED, 1 check changed" in out
    assert "base_model: fail → pass" in out


def test_sample_down_is_deterministic_and_keeps_every_group():
    rows: list[dict] = []
    rng = random.Random(1)
    for k in range(5000):
        outcome = rng.choice(["correct"] * 8 + ["wrong", "hedged"])
        rows.append({"example_id": f"e{k}", "run": 0, "index": 0, "outcome": outcome, "scenario": SCENARIOS[k % 7]})
    rows.append({"example_id": "rare", "run": 0, "index": 0, "outcome": "timeout", "scenario": "boundary_case"})
    picked = sample_down(rows, 100)
    assert len(picked) == 100 and picked == sample_down(list(reversed(rows)), 100)
    groups = {(r["outcome"], r["scenario"]) for r in rows}
    assert {(r["outcome"], r["scenario"]) for r in picked} == groups
    # 1 in 5 rows fails, yet failures get three quarters of the budget
    assert sum(r["outcome"] != "correct" for r in picked) == 75
