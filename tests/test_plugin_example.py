"""examples/plugin: a third-party check that pip installs and phasecheck runs through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import TASK_YAML, write_project

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example distribution installed by pip into a fresh target directory (no network: no deps, no
    build isolation, setuptools from this environment)."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("src")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=build,
    )
    assert list(target.glob("phasecheck_answer_format-*.dist-info")), sorted(p.name for p in target.iterdir())
    return target


def _phasecheck(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "phasecheck", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_installed_plugin_is_listed(installed, tmp_path):
    out = _phasecheck(["checks"], installed, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "answer_format" in out.stdout and "max_off_format" in out.stdout


def test_installed_plugin_runs_and_judges_through_its_conditions(installed, tmp_path):
    task = write_project(tmp_path, task_yaml=TASK_YAML + "  answer_format: {max_off_format: 0.1}\n")
    rows = [json.loads(line) for line in (tmp_path / "samples_in.jsonl").read_text().splitlines()]
    for row in rows:  # a quarter of the samples give no answer at all
        if row["index"] == 1 and row["run"] == 1:
            row["completion"] = "I would rather not say."
    (tmp_path / "samples_in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _phasecheck(["check", str(task), "--out", str(tmp_path / "out")], installed, tmp_path)
    assert out.returncode in (0, 1), out.stderr
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    fmt = next(c for c in verdict["checks"] if c["id"] == "answer_format")
    assert fmt["metrics"]["off_format"] == pytest.approx(0.25) and fmt["metrics"]["unparsed"] == 20
    low, high = fmt["metrics"]["off_format_ci"]
    assert low <= 0.25 <= high
    assert fmt["status"] == "warn" and fmt["headline"].endswith(", above 10%") and not fmt["blocking"]
