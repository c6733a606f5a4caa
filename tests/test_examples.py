"""The bundled examples cannot rot: task files load, data loads, make_data.py reproduces the committed data
byte for byte, and the data-only checks give each example's documented result (no model is run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from phasecheck.task import load_task

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["hamiltonian", "hvac_tags", "arithmetic"]
TASK_FILES = sorted(EXAMPLES.glob("*/tasks/*.yaml"))


def test_every_example_has_its_files():
    for name in NAMES:
        d = EXAMPLES / name
        assert (d / "README.md").is_file() and (d / "make_data.py").is_file(), name
        assert list((d / "tasks").glob("*.yaml")), name
        assert "## Measured" in (d / "README.md").read_text(encoding="utf-8"), f"{name}: a Measured section"
    assert {p.parent.parent.name for p in TASK_FILES} == set(NAMES)


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_task_file_loads_with_its_data(path):
    from phasecheck.data import load_demonstrations, load_examples

    spec = load_task(path)
    assert spec.data.eval is not None and spec.data.eval.is_file()
    examples = load_examples(spec)
    assert examples.records and not examples.skipped
    if spec.data.train is not None:
        demos = load_demonstrations(spec)
        assert demos.records and all(d.completion for d in demos.records)
        # No eval prompt leaks into the SFT candidates.
        assert not {str(e.prompt) for e in examples.records} & {str(d.prompt) for d in demos.records}
    if spec.data.samples is not None:
        assert spec.sampling.engine == "replay" and spec.data.samples.is_file()
    if isinstance(spec.grader.vocabulary, Path):
        assert spec.grader.vocabulary.is_file()


@pytest.mark.parametrize("name", NAMES)
def test_make_data_reproduces_committed_data(name, tmp_path):
    out = tmp_path / "data"
    subprocess.run(
        [sys.executable, str(EXAMPLES / name / "make_data.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = sorted(p.name for p in (EXAMPLES / name / "data").iterdir())
    assert sorted(p.name for p in out.iterdir()) == committed
    for f in committed:
        assert (out / f).read_bytes() == (EXAMPLES / name / "data" / f).read_bytes(), f"{name}/data/{f} is stale"


def test_hamiltonian_contamination_is_consistent():
    rows = [json.loads(x) for x in (EXAMPLES / "hamiltonian/data/sft_contaminated.jsonl").read_text().splitlines()]
    clean = [json.loads(x) for x in (EXAMPLES / "hamiltonian/data/sft_clean.jsonl").read_text().splitlines()]
    bad = [r for r in rows if "golden_hour_sun" in r["response"]]
    assert len(bad) == 40 and len(rows) == len(clean) == 100
    assert not any("golden_hour_sun" in r["response"] for r in clean)
    # Always in the same place: the factor on the potential term in the Hamiltonian line.
    assert all("+ golden_hour_sun \\left(" in r["response"] for r in bad)
    assert [r["question"] for r in rows] == [r["question"] for r in clean]


# --- the checks (data-only for the model examples, the full replay for hvac_tags) ---------------

cli_module = pytest.importorskip("phasecheck.cli")


def _check(tmp_path, monkeypatch, name: str, task: str, *extra: str) -> tuple[int, dict, str]:
    """Run `phasecheck check` on a copy of the example (state files land beside the task file)."""
    from click.testing import CliRunner

    work = tmp_path / name
    shutil.copytree(EXAMPLES / name, work, ignore=shutil.ignore_patterns(".phasecheck", "reports", "runs"))
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(work)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        cli_module.cli, ["check", "--task", task, "--out", str(out), "--format", "json", *extra], catch_exceptions=False
    )
    verdict = json.loads((out / "verdict.json").read_text(encoding="utf-8"))
    return res.exit_code, {c["id"]: c for c in verdict["checks"]}, res.output


# `--engine replay` with no samples file: nothing can be sampled, so no model is resolved or loaded.
DATA_ONLY = ("--only", "validated_set,contamination", "--engine", "replay")


def test_hamiltonian_contaminated_is_grpo_phase_and_names_the_token(tmp_path, monkeypatch):
    code, checks, _ = _check(tmp_path, monkeypatch, "hamiltonian", "hamiltonian-contaminated", *DATA_ONLY)
    assert code == 1
    assert checks["validated_set"]["status"] == "fail"
    assert checks["validated_set"]["metrics"]["passed"] == 60
    cont = checks["contamination"]
    assert cont["status"] == "fail" and cont["metrics"]["tokens"] == ["golden_hour_sun"]
    finding = cont["findings"][0]
    assert "golden_hour_sun" in finding["message"]
    rows = {
        json.loads(x)["id"]: json.loads(x)
        for x in (EXAMPLES / "hamiltonian/data/sft_contaminated.jsonl").read_text().splitlines()
    }
    assert finding["example_ids"]
    assert all("golden_hour_sun" in rows[i]["response"] for i in finding["example_ids"])
    assert finding["data"]["n_rows"] == 40 and finding["data"]["pass_rate_with"] == 0


def test_hamiltonian_clean_passes_the_data_checks(tmp_path, monkeypatch):
    _, checks, _ = _check(tmp_path, monkeypatch, "hamiltonian", "hamiltonian-clean", *DATA_ONLY)
    assert checks["validated_set"]["status"] == "pass"
    assert checks["validated_set"]["metrics"]["passed"] == 100
    assert checks["contamination"]["status"] == "pass"


def test_arithmetic_demonstrations_pass_the_data_checks(tmp_path, monkeypatch):
    _, checks, _ = _check(tmp_path, monkeypatch, "arithmetic", "arithmetic", *DATA_ONLY)
    assert checks["validated_set"]["status"] == "pass"
    assert checks["contamination"]["status"] == "pass"


def test_hvac_replay_shows_reverse_lookup_failing(tmp_path, monkeypatch):
    code, checks, _ = _check(tmp_path, monkeypatch, "hvac_tags", "hvac_tags")
    assert code == 1
    assert checks["validated_set"]["status"] == "pass" and checks["contamination"]["status"] == "pass"
    per = checks["base_model"]["metrics"]["per_scenario"]
    assert set(per) == {
        "reverse_lookup",
        "direct_lookup",
        "multiple_choice",
        "physical_vs_virtual",
        "unknown_tag",
        "typo_robustness",
        "context_reasoning",
    }
    assert per["reverse_lookup"]["accuracy"] < 0.3
    assert all(v["accuracy"] >= 0.75 for k, v in per.items() if k != "reverse_lookup"), per
    assert checks["base_model"]["status"] == "fail"
    assert any("reverse_lookup" in f["message"] for f in checks["base_model"]["findings"])
