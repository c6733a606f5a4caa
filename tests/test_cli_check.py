"""`phasecheck check` / `check_domain_phase` end to end: every exit code, golden output, replay = live."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from phasecheck.cli import check_domain_phase_cmd, cli
from support import TASK_YAML, write_project

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def invoke(*args, cmd=cli):
    return CliRunner().invoke(cmd, list(args), catch_exceptions=False)


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PHASECHECK_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; refresh with PHASECHECK_UPDATE_GOLDEN=1"


def test_exit_0_graduated(project):
    write_project(project)
    res = invoke("check")
    assert res.exit_code == 0, res.output
    assert "→ Status: GRADUATED" in res.stdout
    saved = json.loads((project / "reports" / "doubling" / "verdict.json").read_text())
    assert saved["status"] == "GRADUATED" and saved["command"] == ["phasecheck", "check"]
    assert (project / "reports" / "doubling" / "report.txt").is_file()


def test_exit_1_grpo_phase_with_golden_checklist(project):
    write_project(project, contaminated=True, accuracy_fn=lambda i, r, j: i % 4 != 0 or r == 0)
    res = invoke("check", "-v", "--out", "out")
    assert res.exit_code == 1, res.output
    assert_golden("check_grpo_phase_verbose.txt", res.stdout)
    quiet = invoke("check", "--out", "out")
    assert_golden("check_grpo_phase.txt", quiet.stdout)
    assert "      - " not in quiet.stdout and "      - " in res.stdout  # findings only with -v
    # The rows a lead drills into travel with the verdict: failing or flagged demonstrations, with grades.
    verdict = json.loads((project / "out" / "verdict.json").read_text())
    assert verdict["artifacts"]["demonstrations"] == "demonstrations.jsonl"
    rows = [json.loads(x) for x in (project / "out" / "demonstrations.jsonl").read_text().splitlines()]
    flagged = next(f for c in verdict["checks"] if c["id"] == "contamination" for f in c["findings"])
    assert set(flagged["example_ids"]) <= {r["id"] for r in rows}
    assert all(r["correct"] is not True or r["id"] in flagged["example_ids"] for r in rows)


@pytest.mark.parametrize(
    "args,message",
    [
        (["check", "--only", "contamnation"], "did you mean 'contamination'"),
        (["check", "--task", "nope"], "no task with that name"),
        (["check", "--format", "pdf"], "unknown reporter 'pdf'"),
        (["check", "--samples", "missing.jsonl"], "--samples missing.jsonl: file not found"),
        (["check", "--compare", "old.json"], "old.json: no such verdict file"),
        (["check", "Doubling", "--task", "Other"], "give one"),
    ],
)
def test_exit_2_bad_usage_or_input(project, args, message):
    write_project(project)
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_exit_2_bad_data_row(project):
    write_project(project)
    (project / "eval.jsonl").write_text('{"id": "q0", "prompt": "p", "reference": "0"}\n[1, 2\n')
    res = invoke("check")
    assert res.exit_code == 2 and "eval.jsonl" in res.output


def test_exit_3_inconclusive_when_a_blocking_check_errors(project, boom_plugin):  # noqa: F811 - fixture
    write_project(project, task_yaml=TASK_YAML + "  boom: {}\ngate: {blocking: [validated_set, boom]}\n")
    res = invoke("check", "-v")
    assert res.exit_code == 3, res.output
    assert "[E] Does this check explode?" in res.stdout and "RuntimeError('kaboom')" in res.stdout
    assert "→ Status: INCONCLUSIVE" in res.stdout


def test_fail_on_warn_turns_an_advisory_warning_into_grpo_phase(project):
    # Every sample wrong on half the prompts, always the same answer: diversity warns, base_model fails anyway;
    # so narrow to the advisory check alone plus a blocking set that passes.
    yaml = TASK_YAML + "gate: {blocking: [validated_set]}\n"
    write_project(project, task_yaml=yaml, accuracy_fn=lambda i, r, j: i % 2 == 0)
    assert invoke("check", "--only", "validated_set,diversity").exit_code == 0
    res = invoke("check", "--only", "validated_set", "--only", "diversity", "--fail-on-warn")
    assert res.exit_code == 1 and "[!]" in res.stdout


def checklist(stdout: str) -> str:
    """The terminal output without the report paths that follow it (they name the --out dir)."""
    return stdout.split("Reports:")[0]


def test_check_domain_phase_is_the_same_command(project):
    write_project(project, contaminated=True)
    a = invoke("check", "--out", "a")
    b = invoke("--out", "b", cmd=check_domain_phase_cmd)
    assert (a.exit_code, checklist(a.stdout)) == (b.exit_code, checklist(b.stdout))
    assert a.exit_code == 1 and "Reports: a/verdict.json" in a.stdout and "b/report.html" in b.stdout


def test_json_format_prints_the_verdict(project):
    write_project(project)
    res = invoke("check", "--format", "json", "--format", "junit")
    doc = json.loads(res.stdout)
    assert doc["status"] == "GRADUATED" and doc["schema"] == "phasecheck.verdict/1"
    assert (project / "reports" / "doubling" / "junit.xml").is_file()


def test_compare_names_regressed_prompts(project):
    write_project(project)
    assert invoke("check", "--out", "old").exit_code == 0
    write_project(project, accuracy_fn=lambda i, r, j: i not in (3, 7))
    res = invoke("check", "--out", "new", "--compare", "old/verdict.json", "-v")
    saved = json.loads((project / "new" / "verdict.json").read_text())
    stab = next(c for c in saved["checks"] if c["id"] == "stability")
    assert stab["metrics"]["regressed"] == ["q3", "q7"] and saved["compare"]["regressed"] == ["q3", "q7"]
    assert stab["status"] == "warn" and "2 regressed" in res.stdout
    assert saved["compare"]["status"] == {"old": "GRADUATED", "new": "GRADUATED", "changed": False}
    assert res.exit_code == 0
    strict = invoke("check", "--out", "new", "--compare", "old/verdict.json", "--fail-on-warn")
    assert strict.exit_code == 1


def test_checks_lists_questions_and_parameters():
    res = invoke("checks")
    assert res.exit_code == 0
    assert "contamination: Do you have correct examples you trust?" in res.output
    assert "    max_rate (default 0.05): Share of rows an ungrounded token may reach" in res.output


ONLY_SAMPLE_CHECKS = "base_model,stability,grpo_readiness,diversity,contamination"
SAMPLE_FIELDS = {"example_id", "run", "index", "seed", "completion", "finish_reason", "n_tokens", "model", "engine"}


@pytest.fixture
def live_run(project, tiny_model_dir):
    write_project(
        project,
        samples=False,
        task_yaml=TASK_YAML.replace(
            "sampling: {runs: 2, n: 2}", "sampling: {runs: 2, n: 2, max_new_tokens: 6, temperature: 1.0}"
        ),
    )
    live = invoke("check", "--model", str(tiny_model_dir), "--out", "live", "--only", ONLY_SAMPLE_CHECKS)
    assert live.exit_code in (0, 1), live.output
    return project, live


def test_replay_of_saved_samples_gives_the_same_verdict_as_live_sampling(live_run):
    project, live = live_run
    rows = [json.loads(x) for x in (project / "live" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 20 * 2 * 2 and all(r["model"] for r in rows)
    (project / "plain.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k in SAMPLE_FIELDS}) + "\n" for r in rows)
    )
    replay = invoke("check", "--samples", "plain.jsonl", "--out", "replay", "--only", ONLY_SAMPLE_CHECKS)
    assert replay.exit_code == live.exit_code, replay.output
    a = json.loads((project / "live" / "verdict.json").read_text())
    b = json.loads((project / "replay" / "verdict.json").read_text())
    assert a["checks"] == b["checks"] and a["status"] == b["status"]
    assert checklist(live.stdout) == checklist(replay.stdout)


def test_saved_samples_file_replays_as_is(live_run):
    project, live = live_run
    replay = invoke("check", "--samples", "live/samples.jsonl", "--out", "replay", "--only", ONLY_SAMPLE_CHECKS)
    assert replay.exit_code == live.exit_code, replay.output


def test_after_grpo_checks_the_newest_recorded_checkpoint(project, tiny_model_dir):
    from phasecheck.state import record_run
    from phasecheck.task import load_task

    task_file = write_project(
        project,
        samples=False,
        task_yaml=TASK_YAML.replace("sampling: {runs: 2, n: 2}", "sampling: {runs: 1, n: 2, max_new_tokens: 4}"),
    )
    record_run(load_task(task_file), kind="grpo", path=tiny_model_dir, step=5, created_at="2026-01-01T00:00:00Z")
    res = invoke("check", "--after-grpo", "--out", "after")
    assert res.exit_code in (0, 1), res.output
    saved = json.loads((project / "after" / "verdict.json").read_text())
    assert saved["model"] == str(tiny_model_dir) and saved["artifacts"]["samples"] == "samples.jsonl"
    vs = next(c for c in saved["checks"] if c["id"] == "validated_set")
    assert "model_outputs" in vs["metrics"]
    rows = [json.loads(x) for x in (project / "after" / "validated.jsonl").read_text().splitlines()]
    model_rows = [r for r in rows if "model" in r["provenance"]]
    assert len(model_rows) <= vs["metrics"]["model_outputs"]
    assert all(r["provenance"]["step"] == 5 for r in model_rows)
