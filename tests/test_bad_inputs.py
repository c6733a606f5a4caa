"""Malformed task and data files: each gives exit 2 and one `error:` line naming the file, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phasecheck.cli import cli


def _saved_dataset(path: Path, splits: tuple[str, ...] | None = None) -> None:
    import datasets

    ds = datasets.Dataset.from_list([{"prompt": "p", "id": "a"}])
    if splits is None:
        ds.save_to_disk(str(path))
    else:
        datasets.DatasetDict({s: ds for s in splits}).save_to_disk(str(path))


def _parquet(path: Path, rows: list) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


def _jsonl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


EVAL = "name: t\ndata: {eval: e.jsonl}\n"


def _nested(depth: int) -> str:
    """A row whose extra column nests `depth` lists deep."""
    return '{"prompt": "a", "x": ' + "[" * depth + "]" * depth + "}"


def _bomb(levels: int = 9) -> str:
    text = "name: t\nx:\n  a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels):
        text += f"  l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * 9) + "]\n"
    return text


_BOMB = _bomb()
Q = "name: t\ndata:\n  eval: e.jsonl\n  fields: {prompt: question}\n"

# id, task file text, data files {name: text | bytes | callable(path)}, substrings the error line must contain
CASES = [
    # --- task files
    ("yaml-syntax", "name: t\nsampling: {runs: 2\n", {}, ["task.yaml:", "invalid YAML"]),
    ("yaml-not-mapping", "- name: t\n- b\n", {}, ["task.yaml:1", "must be a YAML mapping"]),
    ("yaml-scalar", "just words\n", {}, ["task.yaml:1", "must be a YAML mapping"]),
    ("task-empty", "", {}, ["task.yaml:1", "must be a YAML mapping"]),
    ("task-not-utf8", b"name: caf\xe9\xff\n", {}, ["task.yaml", "cannot read task file"]),
    ("unknown-top-level", "name: t\nmodle: smollm2\n", {}, ["task.yaml:2", "modle: unknown field"]),
    (
        "nested-typo",
        "name: t\nsampling:\n  temprature: 0.5\n",
        {},
        ["task.yaml:3", "sampling.temprature: unknown field", "'temperature'"],
    ),
    (
        "fieldmap-typo",
        "name: t\ndata:\n  fields: {promt: q}\n",
        {},
        ["task.yaml:3", "data.fields.promt: unknown field"],
    ),
    ("runs-not-int", "name: t\nsampling:\n  runs: many\n", {}, ["task.yaml:3", "sampling.runs", "valid integer"]),
    (
        "runs-negative",
        "name: t\nsampling: {runs: -2}\n",
        {},
        ["task.yaml:2", "sampling.runs", "greater than or equal to 1"],
    ),
    ("missing-name", "data: {eval: e.jsonl}\n", {}, ["task.yaml:1", "name: required field is missing"]),
    (
        "on-bad-rows-invalid",
        "name: t\ndata:\n  eval: e.jsonl\n  on_bad_rows: ignore\n",
        {},
        ["task.yaml:4", "data.on_bad_rows", "'error' or 'skip'"],
    ),
    (
        "checks-as-list",
        "name: t\nchecks:\n  - contamination\n  - stability\n",
        {},
        ["task.yaml:2", "checks:", "valid dictionary"],
    ),
    (
        "blocking-as-string",
        "name: t\ngate: {blocking: contamination}\n",
        {},
        ["task.yaml:2", "gate.blocking", "valid list"],
    ),
    (
        "verifier-typo",
        "name: t\ngrader:\n  verifier: {kind: math, extrct: boxed}\n",
        {},
        ["task.yaml:3", "grader.verifier.extrct: unknown field"],
    ),
    ("task-not-found", None, {}, ["nosuch.yaml", "task file not found"]),
    # --- data files: file-level
    ("data-missing", EVAL, {}, ["e.jsonl: data file not found", "data.eval in", "task.yaml"]),
    (
        "unknown-extension",
        "name: t\ndata: {eval: e.txt}\n",
        {"e.txt": "prompt\nhi\n"},
        ["e.txt: unknown data format '.txt'", "supported: .jsonl"],
    ),
    ("data-empty", EVAL, {"e.jsonl": ""}, ["e.jsonl: no rows", "data.eval"]),
    (
        "csv-missing-column",
        "name: t\ndata: {eval: e.csv, fields: {prompt: question}}\n",
        {"e.csv": "id,prompt\n1,hi\n"},
        ["e.csv: column 'question' is missing", "fields.prompt", "the columns are: id, prompt"],
    ),
    (
        "csv-not-utf8",
        "name: t\ndata: {eval: e.csv}\n",
        {"e.csv": b"prompt\nna\xefve \xff\xfe\n"},
        ["e.csv", "not valid UTF-8"],
    ),
    (
        "parquet-is-text",
        "name: t\ndata: {eval: e.parquet}\n",
        {"e.parquet": "prompt\nhello\n"},
        ["e.parquet: not a readable Parquet file"],
    ),
    (
        "parquet-missing-column",
        "name: t\ndata: {eval: e.parquet, fields: {prompt: question}}\n",
        {"e.parquet": lambda p: _parquet(p, [{"prompt": "x"}])},
        ["e.parquet: column 'question' is missing"],
    ),
    (
        "json-not-a-list",
        "name: t\ndata: {eval: e.json}\n",
        {"e.json": '"just a string"\n'},
        ["e.json:1", "must hold a list of row objects"],
    ),
    (
        "json-single-object",
        "name: t\ndata: {eval: e.json}\n",
        {"e.json": '{\n  "rows": [{"prompt": "a"}]\n}\n'},
        ["e.json:1", "single multi-line object"],
    ),
    (
        "json-array-truncated",
        "name: t\ndata: {eval: e.json}\n",
        {"e.json": '[\n  {"prompt": "a"},\n  {"prompt": "b"'},
        ["e.json:3", "row 2", "invalid JSON"],
    ),
    ("binary-garbage", EVAL, {"e.jsonl": bytes(range(256)) * 4}, ["e.jsonl:1: row 1:"]),
    (
        "dir-not-saved-dataset",
        "name: t\ndata: {eval: d}\n",
        {"d/readme.txt": "hi"},
        ["d: a directory, but not one written by `datasets` save_to_disk"],
    ),
    (
        "dataset-dict-many-splits",
        "name: t\ndata: {eval: d}\n",
        {"d": lambda p: _saved_dataset(p, ("test", "train"))},
        ["d: a DatasetDict with splits test, train"],
    ),
    # --- data files: rows
    (
        "jsonl-broken-line",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": "a"}, '{"prompt": "b",', {"prompt": "c"})},
        ["e.jsonl:2: row 2: invalid JSON"],
    ),
    (
        "jsonl-not-utf8",
        EVAL,
        {"e.jsonl": b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n'},
        ["e.jsonl:2: row 2: not valid UTF-8"],
    ),
    (
        "row-missing-prompt",
        Q,
        {"e.jsonl": _jsonl({"question": "a"}, {"prompt": "b"})},
        ["e.jsonl:2: row 2: field 'question' is missing (fields.prompt maps the prompt to 'question')"],
    ),
    (
        "prompt-is-number",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": 42})},
        ["e.jsonl:1: row 1: field 'prompt' must be a string or a chat message list", "got int"],
    ),
    ("prompt-empty", EVAL, {"e.jsonl": _jsonl({"prompt": "  "})}, ["e.jsonl:1: row 1: field 'prompt' is empty"]),
    (
        "chat-message-no-role",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": [{"role": "user", "content": "a"}, {"content": "b"}]})},
        ["e.jsonl:1: row 1: field 'prompt': message 2 has no 'role'"],
    ),
    (
        "chat-content-not-string",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": [{"role": "user", "content": 3}]})},
        ["row 1: field 'prompt': message 1 'content' must be a string"],
    ),
    (
        "row-not-object",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": "a"}, ["prompt", "b"])},
        ["e.jsonl:2: row 2: expected an object with fields, got list"],
    ),
    (
        "duplicate-ids",
        EVAL,
        {"e.jsonl": _jsonl({"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}, {"id": "a", "prompt": "z"})},
        ["e.jsonl:3: row 3: duplicate id 'a' (first used in row 1)"],
    ),
    (
        "id-wrong-type",
        "name: t\ndata: {eval: e.jsonl, fields: {id: key}}\n",
        {"e.jsonl": _jsonl({"key": [1], "prompt": "x"})},
        ["row 1: field 'key' (the id) must be a string or an integer"],
    ),
    (
        "scenario-mapped-missing",
        "name: t\ndata: {eval: e.jsonl, fields: {scenario: tag}}\n",
        {"e.jsonl": _jsonl({"prompt": "x"})},
        ["row 1: field 'tag' is missing (fields.scenario maps the scenario to 'tag')"],
    ),
    (
        "csv-ragged-row",
        "name: t\ndata: {eval: e.csv}\n",
        {"e.csv": "id,prompt\n1,hi\n2,there,extra\n"},
        ["e.csv:3: row 2: has 3 cells, the header has 2"],
    ),
    (
        "train-missing-completion",
        "name: t\ndata: {eval: e.jsonl, train: t.jsonl}\n",
        {"e.jsonl": _jsonl({"prompt": "x"}), "t.jsonl": _jsonl({"prompt": "x", "answer": "y"})},
        ["t.jsonl:1: row 1: field 'completion' is missing (set fields.completion"],
    ),
    (
        "completion-null",
        "name: t\ndata: {eval: e.jsonl, train: t.jsonl}\n",
        {"e.jsonl": _jsonl({"prompt": "x"}), "t.jsonl": _jsonl({"prompt": "x", "completion": None})},
        ["t.jsonl:1: row 1: field 'completion' (the completion) must be a string, got null"],
    ),
    (
        "skip-but-every-row-bad",
        "name: t\ndata: {eval: e.jsonl, on_bad_rows: skip}\n",
        {"e.jsonl": _jsonl({"x": 1}, {"prompt": 5})},
        ["e.jsonl: every row was bad", "2 bad rows skipped"],
    ),
    # --- what reading may cost: nesting, expansion, size
    (
        "json-nested-5000",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": "a"}, _nested(5000))},
        ["e.jsonl:2: row 2: JSON nested deeper than 64 levels"],
    ),
    ("json-nested-100", EVAL, {"e.jsonl": _jsonl(_nested(100))}, ["e.jsonl:1: row 1: JSON nested deeper than 64"]),
    (
        "json-objects-nested",
        EVAL,
        {"e.jsonl": _jsonl('{"prompt": "a", "m": ' + '{"k": ' * 80 + "1" + "}" * 80 + "}")},
        ["e.jsonl:1: row 1: JSON nested deeper than 64"],
    ),
    (
        "json-array-nested-5000",
        "name: t\ndata: {eval: e.json}\n",
        {"e.json": "[\n" + _nested(5000) + "\n]\n"},
        ["e.json:2: row 1: JSON nested deeper than 64 levels"],
    ),
    (
        "json-array-nested-100",
        "name: t\ndata: {eval: e.json}\n",
        {"e.json": '[{"prompt": "a"},\n' + _nested(100) + "]"},
        ["e.json:2: row 2: JSON nested deeper than 64"],
    ),
    (
        "train-nested",
        "name: t\ndata: {eval: e.jsonl, train: t.jsonl}\n",
        {"e.jsonl": _jsonl({"prompt": "x"}), "t.jsonl": _jsonl({"prompt": "x", "completion": "y"}, _nested(3000))},
        ["t.jsonl:2: row 2: JSON nested deeper than 64"],
    ),
    (
        "jsonl-line-too-long",
        EVAL,
        {"e.jsonl": lambda p: p.write_bytes(b'{"prompt": "' + b"a" * (65 << 20) + b'"}\n')},
        ["e.jsonl:1: row 1: line longer than 64 MiB"],
    ),
    ("yaml-alias-bomb", _BOMB, {}, ["task.yaml:4", "YAML aliases expand to more than 20,000 values"]),
    ("yaml-recursive-alias", "name: t\ndescription: &a [*a]\n", {}, ["task.yaml:2", "refer to themselves"]),
    (
        "yaml-nested-deep",
        "name: t\ndescription: " + "[" * 60 + "]" * 60 + "\n",
        {},
        ["task.yaml:2", "YAML nested deeper than 50 levels"],
    ),
    (
        "yaml-block-nested-deep",
        "name: t\nx:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60)),
        {},
        ["task.yaml:", "YAML nested deeper than 50 levels"],
    ),
    ("task-too-large", "name: t\n" + "# padding\n" * 120_000, {}, ["task.yaml: task file is", "at most 1,048,576"]),
    ("task-is-directory", lambda p: p.mkdir(), {}, ["task.yaml", "cannot read task file"]),
    # --- unknown plugin ids, wherever one is named
    (
        "unknown-check-id",
        "name: t\nchecks:\n  golden_detector: {}\n",
        {},
        ["task.yaml:3", "checks.golden_detector: unknown check 'golden_detector'", "installed: base_model"],
    ),
    (
        "check-id-typo",
        "name: t\nchecks:\n  contamnation: {max_rate: 0.1}\n",
        {},
        ["task.yaml:3", "checks.contamnation: unknown check", "did you mean 'contamination'?"],
    ),
    (
        "unknown-blocking-id",
        "name: t\ngate:\n  blocking: [validated_set, stabilty]\n",
        {},
        ["task.yaml:3", "gate.blocking.1: unknown check 'stabilty'", "did you mean 'stability'?"],
    ),
    (
        "unknown-engine",
        "name: t\nsampling:\n  engine: vlm\n",
        {},
        ["task.yaml:3", "sampling.engine: unknown engine 'vlm'", "did you mean 'vllm'?"],
    ),
    (
        "unknown-verifier",
        "name: t\ngrader:\n  verifier: {kind: maths}\n",
        {},
        ["task.yaml:3", "grader.verifier.kind: unknown verifier 'maths'", "did you mean 'math'?"],
    ),
    (
        "unknown-scenario-verifier",
        "name: t\ngrader:\n  scenarios:\n    a:\n      verifier: {kind: refusl}\n",
        {},
        ["task.yaml:5", "grader.scenarios.a.verifier.kind: unknown verifier 'refusl'", "'refusal'"],
    ),
    (
        "check-params-typo",
        "name: t\nchecks:\n  contamination: {max_rte: 0.1}\n",
        {},
        ["task.yaml", "checks.contamination.max_rte: unknown field"],
    ),
    (
        "check-params-wrong-type",
        "name: t\nchecks:\n  base_model: {min_accuracy: high}\n",
        {},
        ["task.yaml", "checks.base_model.min_accuracy"],
    ),
    # --- more shapes of bad task files
    ("name-null", "name:\n", {}, ["task.yaml:1", "name"]),
    ("yaml-tab-indent", "name: t\n\tsampling: {}\n", {}, ["task.yaml:2", "invalid YAML"]),
    ("temperature-negative", "name: t\nsampling: {temperature: -1}\n", {}, ["task.yaml:2", "sampling.temperature"]),
    ("fields-not-mapping", "name: t\ndata:\n  fields: prompt\n", {}, ["task.yaml:3", "data.fields"]),
    # --- more shapes of bad rows
    (
        "prompt-is-object",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": {"text": "a"}})},
        ["e.jsonl:1: row 1: field 'prompt' must be a string or a chat message list", "got dict"],
    ),
    (
        "chat-message-not-object",
        EVAL,
        {"e.jsonl": _jsonl({"prompt": ["hello"]})},
        ["e.jsonl:1: row 1: field 'prompt': message 1 is a str"],
    ),
    (
        "reference-mapped-missing",
        "name: t\ndata: {eval: e.jsonl, fields: {reference: answer}}\n",
        {"e.jsonl": _jsonl({"prompt": "x", "reference": "1"})},
        ["e.jsonl:1: row 1: field 'answer' is missing (fields.reference maps the reference to 'answer')"],
    ),
    (
        "json-array-element-not-object",
        "name: t\ndata: {eval: e.json}\n",
        {"e.json": '[{"prompt": "a"}, 7]'},
        ["e.json:1: row 2: expected an object with fields, got int"],
    ),
    (
        "train-is-directory",
        "name: t\ndata: {eval: e.jsonl, train: d}\n",
        {"e.jsonl": _jsonl({"prompt": "x"}), "d/x.txt": "hi"},
        ["d: a directory, but not one written by `datasets` save_to_disk"],
    ),
]


def _write_case(tmp_path: Path, task_text, files) -> Path:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    task_file = tmp_path / ("nosuch.yaml" if task_text is None else "task.yaml")
    if callable(task_text):
        task_text(task_file)
    elif isinstance(task_text, str):
        task_file.write_text(task_text, encoding="utf-8")
    elif isinstance(task_text, bytes):
        task_file.write_bytes(task_text)
    return task_file


def _assert_one_error_line(result, expected) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for part in expected:
        assert part in line, f"{part!r} not in {line!r}"


@pytest.mark.parametrize("command", ["validate", "check"])
@pytest.mark.parametrize("task_text, files, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_error_line(tmp_path, monkeypatch, command, task_text, files, expected):
    task_file = _write_case(tmp_path, task_text, files)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    args = [command, str(task_file)] + (["--out", str(tmp_path / "out")] if command == "check" else [])

    result = CliRunner().invoke(cli, args)

    _assert_one_error_line(result, expected)
    # Nothing written: no output directory, no verdict recorded, no temp file left behind.
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_case_count():
    # At least 60 distinct malformed inputs (issue 11); the CLI-option cases below come on top.
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


def test_good_task_validates(tmp_path):
    (tmp_path / "e.jsonl").write_text(
        _jsonl(
            {"id": "a", "question": "x", "answer": "1"}, {"id": "b", "question": "y", "answer": "2"}, {"question": 3}
        )
    )
    task_file = tmp_path / "task.yaml"
    task_file.write_text(
        "name: Good\ndata:\n  eval: e.jsonl\n  on_bad_rows: skip\n  fields: {prompt: question, reference: answer}\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(task_file)])
    assert result.exit_code == 0, result.output
    assert "task: Good" in result.stdout
    assert (
        "eval: 2 rows from " in result.stdout and "(1 bad row skipped: row 3: field 'question' must be" in result.stdout
    )
    assert result.stderr == ""
