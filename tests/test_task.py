"""Task files: path resolution, lookup by name, the printed JSON Schema, and located field errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phasecheck.cli import cli
from phasecheck.errors import ConfigError
from phasecheck.task import TaskSpec, find_task, load_task


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_paths_resolve_relative_to_task_file(tmp_path, monkeypatch):
    task_file = write(
        tmp_path / "proj" / "tasks" / "geo.yaml",
        "name: Geo\ndata: {eval: ../data/eval.jsonl, train: /abs/train.jsonl}\n"
        "grader: {vocabulary: vocab.txt}\ntraining: {output_dir: runs}\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_task(Path("..") / "proj" / "tasks" / "geo.yaml")
    base = task_file.resolve().parent
    assert spec.data.eval == base / "../data/eval.jsonl"
    assert spec.data.eval.resolve() == (tmp_path / "proj" / "data" / "eval.jsonl").resolve()
    assert spec.data.train == Path("/abs/train.jsonl")
    assert spec.grader.vocabulary == base / "vocab.txt"
    assert spec.training.output_dir == base / "runs"
    assert spec.source == task_file.resolve() and spec.base_dir == base


@pytest.fixture
def project(tmp_path, monkeypatch):
    write(tmp_path / "phasecheck.yaml", "name: Main Task\n")
    write(tmp_path / "tasks" / "hamiltonian.yaml", "name: Hamiltonian Geometry\n")
    write(tmp_path / "tasks" / "hvac.yaml", "name: HVAC tags\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "query, expected",
    [
        ("main task", "Main Task"),
        ("HAMILTONIAN GEOMETRY", "Hamiltonian Geometry"),
        ("hamiltonian-geometry", "Hamiltonian Geometry"),  # the slug
        ("hvac", "HVAC tags"),  # the file stem
        ("tasks/hvac.yaml", "HVAC tags"),  # a path
    ],
)
def test_find_task_by_name_stem_slug_or_path(project, query, expected):
    assert find_task(query).name == expected


def test_find_task_did_you_mean(project):
    with pytest.raises(
        ConfigError,
        match=r"--task 'Hamiltonian Geometri': no task with that name .*"
        r"did you mean 'Hamiltonian Geometry'\?",
    ):
        find_task("Hamiltonian Geometri")
    with pytest.raises(ConfigError, match="known tasks: Main Task, Hamiltonian Geometry, HVAC tags"):
        find_task("zzzzzz")


def test_find_task_without_a_name(project, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="several task files found; pick one with --task NAME"):
        find_task(None)
    only = tmp_path / "only"
    write(only / "phasecheck.yaml", "name: Only\n")
    assert find_task(None, cwd=only).name == "Only"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"no task given, and no ./phasecheck.yaml or ./tasks/\*.yaml here"):
        find_task(None, cwd=empty)
    with pytest.raises(ConfigError, match=r"empty: --task 'hvac', and no .* here to find it in"):
        find_task("hvac", cwd=empty)


def test_schema_prints_json_schema():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == TaskSpec.model_json_schema()
    assert doc["type"] == "object" and doc["required"] == ["name"]
    assert doc["additionalProperties"] is False
    assert {"name", "data", "grader", "sampling", "checks", "gate", "training"} <= set(doc["properties"])
    fieldmap = doc["$defs"]["FieldMap"]["properties"]
    assert "description" in fieldmap["prompt"]  # documented once, in Field(description=...)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "name: t\nsampling:\n  runs: 2\n  temprature: 0.5\n",
            "task.yaml:4: sampling.temprature: unknown field; did you mean 'temperature'?",
        ),
        (
            "name: t\ngrader:\n  verifier: {kind: math, extrat: boxed}\n",
            "task.yaml:3: grader.verifier.extrat: unknown field",
        ),
        ("name: t\nsampling:\n  runs: many\n", "task.yaml:3: sampling.runs: Input should be a valid integer"),
        ("name: t\nsampling: {runs: -1}\n", "task.yaml:2: sampling.runs: Input should be greater than or equal to 1"),
        ("name: t\ndata:\n  fields:\n    prompt: q\n    promt: q\n", "task.yaml:5: data.fields.promt: unknown field"),
        ("name: t\ndata:\n  on_bad_rows: ignore\n", "task.yaml:3: data.on_bad_rows: Input should be 'error' or 'skip'"),
        (
            "name: t\ntraining:\n  grpo:\n    lora: {r: 0}\n",
            "task.yaml:4: training.grpo.lora.r: Input should be greater",
        ),
        ("description: x\n", "task.yaml:1: name: required field is missing"),
        ("name: t\ncheks: {}\n", "task.yaml:2: cheks: unknown field"),
    ],
)
def test_field_errors_name_file_line_and_path(tmp_path, text, expected):
    task_file = write(tmp_path / "task.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_task(task_file)
    msg = str(info.value)
    assert msg.startswith(str(task_file)), msg
    assert expected in msg, msg
    assert "\n" not in msg


def test_yaml_syntax_error_names_line(tmp_path):
    task_file = write(tmp_path / "task.yaml", "name: t\nsampling: {runs: 2\ngate: x\n")
    with pytest.raises(ConfigError, match=r"task.yaml:\d+: invalid YAML: "):
        load_task(task_file)


def test_checks_none_params_mean_defaults(tmp_path):
    spec = load_task(
        write(tmp_path / "task.yaml", "name: t\nchecks:\n  contamination:\n  stability: {min_agreement: 0.9}\n")
    )
    assert spec.checks == {"contamination": {}, "stability": {"min_agreement": 0.9}}
    assert spec.check_ids()[:2] == ["contamination", "stability"]
    assert "validated_set" in spec.check_ids()  # blocking checks always run


def test_engine_specific_sampling_keys_pass_through(tmp_path):
    spec = load_task(
        write(tmp_path / "task.yaml", "name: t\nsampling: {engine: vllm, top_k: 20, tensor_parallel_size: 2}\n")
    )
    assert spec.sampling.options == {"top_k": 20, "tensor_parallel_size": 2}
