"""An unexpected exception in any stage exits 3 with one line naming the stage, never 0 or 1 (the verdicts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phasecheck.cli import cli
from phasecheck.options import _debug

TASK = """name: crashy
data: {eval: eval.jsonl, train: train.jsonl, samples: samples.jsonl}
grader: {verifier: {kind: exact}}
sampling: {runs: 2, n: 2}
checks:
  validated_set: {min_examples: 2}
  contamination: {}
  base_model: {}
  stability: {}
  grpo_readiness: {}
  diversity: {}
"""


@pytest.fixture()
def project(tmp_path, monkeypatch):
    ids = ["a", "b", "c"]
    (tmp_path / "eval.jsonl").write_text(
        "".join(json.dumps({"id": i, "prompt": f"say {i}", "reference": i}) + "\n" for i in ids)
    )
    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"id": f"d{i}", "prompt": f"say {i}", "reference": i, "completion": i}) + "\n" for i in ids)
    )
    (tmp_path / "samples.jsonl").write_text(
        "".join(
            json.dumps({"example_id": i, "run": r, "index": k, "seed": r * 2 + k, "completion": i}) + "\n"
            for i in ids
            for r in range(2)
            for k in range(2)
        )
    )
    (tmp_path / "task.yaml").write_text(TASK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHASECHECK_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setitem(_debug, "on", False)
    yield tmp_path
    import logging

    log = logging.getLogger("phasecheck")
    for h in [h for h in log.handlers if getattr(h, "_phasecheck", False)]:
        log.removeHandler(h)
    log.setLevel(logging.NOTSET)


def _check(*extra: str):
    return CliRunner().invoke(cli, ["check", "task.yaml", "--out", "out", *extra])


def _boom(*args, **kwargs):
    raise RuntimeError("injected failure")


def test_baseline_runs_every_stage(project):
    result = _check()
    assert result.exit_code in (0, 1), result.output  # a verdict; 3 prompts are too few to graduate
    assert (project / "out" / "verdict.json").is_file() and (project / "out" / "report.html").is_file()


# (stage named in the error line, object, attribute to replace)
STAGES = [
    ("load eval data", "phasecheck.data", "load_examples"),
    ("load train data", "phasecheck.data", "load_demonstrations"),
    ("set up the grader", "phasecheck.grading.Grader", "__init__"),
    ("sample", "phasecheck.sampling", "sample_task"),
    ("grade samples", "phasecheck.grading.Grader", "grade_many"),
    ("plan checks", "phasecheck.runner", "plan_checks"),
    ("verdict", "phasecheck.verdict", "build_verdict"),
    ("verdict", "phasecheck.verdict", "save_verdict"),
    ("write evidence", "phasecheck.runner", "write_samples"),
    ("text report", "phasecheck.reports.text.TextReporter", "render"),
    ("html report", "phasecheck.reports.html.HtmlReporter", "render"),
]


def _target(dotted: str):
    import importlib

    module, _, cls = dotted.rpartition(".")
    try:
        return importlib.import_module(dotted)
    except ImportError:
        return getattr(importlib.import_module(module), cls)


@pytest.mark.parametrize("where, obj, attr", STAGES, ids=[f"{s[0]}:{s[2]}" for s in STAGES])
def test_exception_in_a_stage_exits_3(project, monkeypatch, where, obj, attr):
    monkeypatch.setattr(_target(obj), attr, _boom)
    result = _check()
    assert result.exit_code == 3, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # progress lines aside
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert lines[0].startswith(f"error: internal error during {where}: RuntimeError: injected failure")
    log = lines[0].split("traceback in ", 1)[1].split(",", 1)[0]
    assert Path(log).is_file() and "injected failure" in Path(log).read_text()
    if where not in ("text report", "html report"):
        # Nothing half-written: no out dir at all (a report crash comes after verdict.json is published).
        assert not (project / "out").exists(), sorted((project / "out").rglob("*"))


@pytest.mark.parametrize(
    "check_id", ["validated_set", "contamination", "base_model", "stability", "grpo_readiness", "diversity"]
)
def test_exception_in_a_check_is_its_error(project, monkeypatch, check_id):
    from phasecheck import plugins

    monkeypatch.setattr(plugins.load("checks", check_id), "measure", _boom)
    result = _check()
    verdict = json.loads((project / "out" / "verdict.json").read_text())
    check = next(c for c in verdict["checks"] if c["id"] == check_id)
    assert check["status"] == "error" and "injected failure" in check["headline"]
    if check["blocking"]:
        assert result.exit_code == 3 and verdict["status"] == "INCONCLUSIVE", result.output
    else:  # an advisory check's error does not gate (ARCHITECTURE.md): the other checks decide
        assert verdict["status"] != "INCONCLUSIVE" and result.exit_code in (0, 1), result.output


def test_exception_in_the_training_gate_exits_3(project, monkeypatch, tiny_model_dir):
    import phasecheck.training.gate as gate

    monkeypatch.setattr(gate, "_decide", _boom)
    result = CliRunner().invoke(cli, ["train", "sft", "task.yaml", "--model", str(tiny_model_dir)])
    assert result.exit_code == 3, result.output
    assert "error: internal error during gate: RuntimeError: injected failure" in result.stderr


def test_recursion_error_is_a_crash_not_a_verdict(project, monkeypatch):
    def recurse(*a, **k):
        return recurse()

    monkeypatch.setattr(_target("phasecheck.grading.Grader"), "grade_many", recurse)
    result = _check()
    assert result.exit_code == 3
    assert "internal error during grade" in result.stderr and "RecursionError" in result.stderr


def test_debug_logs_stages_and_prints_the_traceback(project, monkeypatch):
    monkeypatch.setattr(_target("phasecheck.grading.Grader"), "grade_many", _boom)
    result = _check("--debug")
    assert result.exit_code == 3
    err = result.stderr
    assert "debug: stage load eval data: done" in err and "debug: stage grade samples: failed" in err
    assert "Traceback (most recent call last)" in err and "(traceback above; exit 3)" in err
    assert not (project / "logs").exists()


def test_click_errors_never_exit_1(project):
    # click's Abort (EOF at a prompt) and ClickException default to 1, the GRPO PHASE code.
    (project / "out").mkdir()
    _check()
    result = CliRunner().invoke(cli, ["inspect", "out/verdict.json", "--interactive"], input="")
    assert result.exit_code not in (0, 1) or "interrupted" not in result.stderr
    assert result.exit_code in (0, 130), result.output


CLI_CASES = [
    (["--only", "golden_detector"], "unknown check 'golden_detector'"),
    (["--only", "stabilty"], "did you mean 'stability'?"),
    (["--format", "htm"], "unknown reporter 'htm'; did you mean 'html'?"),
    (["--engine", "vlm"], "unknown engine 'vlm'; did you mean 'vllm'?"),
    (["--samples", "nosuch.jsonl"], "--samples nosuch.jsonl: file not found"),
    (["--compare", "nosuch.json"], "nosuch.json"),
    (["--runs", "0"], "--runs"),
]


@pytest.mark.parametrize("args, expected", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_bad_options_exit_2_and_write_nothing(project, args, expected):
    result = _check(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and "Traceback" not in result.output
    assert not (project / "out").exists()


def test_a_closed_output_pipe_is_not_a_crash(tmp_path):
    """`phasecheck checks | head -1`: the reader leaves early; exit 141 as a shell would, no crash log."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PHASECHECK_LOG_DIR": str(tmp_path / "log")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "phasecheck", "checks"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "internal error" not in err and not (tmp_path / "log").exists()
