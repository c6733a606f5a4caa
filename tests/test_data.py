"""Data loading: every format with field mapping, chat prompts, bad rows, streaming and file hashes."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from phasecheck.data import (
    Loaded,
    data_hashes,
    file_hash,
    iter_demonstrations,
    iter_examples,
    load_demonstrations,
    load_examples,
)
from phasecheck.errors import DataError
from phasecheck.records import Demonstration, Example
from phasecheck.task import FieldMap, load_task

ROWS = [
    {"qid": "a1", "question": "What is 2 + 3?", "answer": "5", "response": "\\boxed{5}", "tag": "add", "level": 1},
    {"qid": "a2", "question": "What is 7 * 6?", "answer": "42", "response": "\\boxed{42}", "tag": "mul", "level": 2},
    {
        "qid": "a3",
        "question": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}],
        "answer": "2",
        "response": "2",
        "tag": "add",
        "level": 1,
    },
]
FIELDS = FieldMap(id="qid", prompt="question", reference="answer", completion="response", scenario="tag")


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_format(tmp_path: Path, fmt: str, rows: list) -> Path:
    """Write rows in one of the supported formats; CSV cannot hold chat lists, so it gets strings only."""
    if fmt == "jsonl":
        return write_jsonl(tmp_path / "d.jsonl", rows)
    if fmt == "json":
        path = tmp_path / "d.json"
        path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
        return path
    if fmt == "json-lines":
        return write_jsonl(tmp_path / "d.json", rows)
    if fmt == "csv":
        path = tmp_path / "d.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return path
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "d.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    if fmt == "saved":
        import datasets

        path = tmp_path / "saved"
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
        return path
    raise AssertionError(fmt)


FORMATS = ["jsonl", "json", "json-lines", "csv", "parquet", "saved"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_maps_fields(tmp_path, fmt):
    rows = ROWS[:2]
    path = write_format(tmp_path, fmt, rows)
    demos = list(iter_demonstrations(path, FIELDS))
    assert [d.id for d in demos] == ["a1", "a2"]
    assert all(isinstance(d, Demonstration) for d in demos)
    first = demos[0]
    assert first.prompt == "What is 2 + 3?"
    assert first.reference == "5"
    assert first.completion == "\\boxed{5}"
    assert first.scenario == "add"
    assert first.source == str(path) and first.row == 1 and demos[1].row == 2
    # unmapped columns travel along for verifiers; CSV keeps them as text
    assert first.columns == {"level": "1" if fmt == "csv" else 1}
    examples = list(iter_examples(path, FIELDS))
    assert type(examples[0]) is Example and "response" in examples[0].columns


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "saved"])
def test_chat_prompts(tmp_path, fmt):
    rows = [{**ROWS[2], "question": ROWS[2]["question"]}, {**ROWS[0], "question": [{"role": "user", "content": "x"}]}]
    path = write_format(tmp_path, fmt, rows)
    ex = list(iter_examples(path, FIELDS))
    assert ex[0].prompt == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}]
    assert ex[1].prompt == [{"role": "user", "content": "x"}]


def test_jsonl_rows_are_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "b"}\n   \n{"prompt": "c"}\n')
    ex = list(iter_examples(path, FieldMap()))
    assert [(e.id, e.row) for e in ex] == [("row-1", 1), ("row-3", 3), ("row-5", 5)]


def test_ids_numbered_when_id_field_is_none(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "id": "x"}, {"prompt": "b", "id": "x"}])
    ex = list(iter_examples(path, FieldMap(id=None)))
    assert [e.id for e in ex] == ["row-1", "row-2"]
    assert ex[0].columns == {"id": "x"}  # the unmapped id column is kept, not used


def test_default_id_column_optional_but_explicit_id_required(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a"}, {"prompt": "b", "id": 7}])
    assert [e.id for e in iter_examples(path, FieldMap())] == ["row-1", "7"]
    with pytest.raises(DataError, match=r"d.jsonl:1: row 1: field 'id' is missing \(fields.id maps"):
        list(iter_examples(path, FieldMap(id="id")))


def test_error_message_names_file_row_field_and_mapping(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    rows = [{"question": f"q{i}"} for i in range(16)] + [{"prompt": "oops"}]
    path = write_jsonl(tmp_path / "data" / "eval.jsonl", rows)
    with pytest.raises(DataError) as info:
        list(iter_examples(path, FieldMap(prompt="question")))
    assert str(info.value) == (
        "data/eval.jsonl:17: row 17: field 'question' is missing (fields.prompt maps the prompt to 'question')"
    )


def test_skip_mode_counts_and_reasons(tmp_path):
    rows = [
        {"prompt": "ok1", "id": 1},
        {"prompt": 5, "id": 2},
        {"id": 3},
        {"prompt": "ok2", "id": 1},
        {"prompt": [{"content": "no role"}], "id": 4},
        {"prompt": "ok3", "id": 5},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with open(path, "a") as fh:
        fh.write("{broken\n")
    skipped: list = []
    ex = list(iter_examples(path, FieldMap(), on_bad_rows="skip", skipped=skipped))
    assert [e.id for e in ex] == ["1", "5"]
    assert [n for n, _ in skipped] == [2, 3, 4, 5, 7]
    reasons = dict(skipped)
    assert "must be a string or a chat message list" in reasons[2] and "got int" in reasons[2]
    assert "field 'prompt' is missing" in reasons[3]
    assert "duplicate id '1' (first used in row 1)" == reasons[4]
    assert "message 1 has no 'role'" in reasons[5]
    assert reasons[7].startswith("invalid JSON")


def test_load_examples_summary_and_skips(tmp_path):
    write_jsonl(
        tmp_path / "eval.jsonl",
        [{"question": "a"}, {"question": ""}, {"x": 1}, {"question": 3}, {"question": None}, {"question": "b"}],
    )
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: t\ndata:\n  eval: eval.jsonl\n  on_bad_rows: skip\n  fields: {prompt: question}\n")
    loaded = load_examples(load_task(task_file))
    assert isinstance(loaded, Loaded) and len(loaded) == 2 and [e.prompt for e in loaded] == ["a", "b"]
    assert len(loaded.skipped) == 4
    s = loaded.summary()
    assert s.startswith("2 rows from ") and "eval.jsonl (4 bad rows skipped: row 2: field 'question' is empty; " in s
    assert s.endswith("; ...)") and "row 5" not in s


def test_load_requires_role_and_existing_file(tmp_path):
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: t\ndata: {eval: missing.jsonl}\n")
    task = load_task(task_file)
    with pytest.raises(DataError, match=r"missing.jsonl: data file not found \(data.eval in .*task.yaml\)"):
        load_examples(task)
    with pytest.raises(DataError, match=r"data.train is not set"):
        load_demonstrations(task)


def test_load_demonstrations_and_empty_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    (tmp_path / "eval.jsonl").write_text("\n")
    task_file = tmp_path / "task.yaml"
    task_file.write_text(
        "name: t\ndata:\n  eval: eval.jsonl\n  train: train.jsonl\n"
        "  fields: {id: qid, prompt: question, reference: answer, completion: response, scenario: tag}\n"
    )
    task = load_task(task_file)
    demos = load_demonstrations(task)
    assert [d.completion for d in demos] == ["\\boxed{5}", "\\boxed{42}", "2"]
    with pytest.raises(DataError, match="eval.jsonl: no rows"):
        load_examples(task)


def test_csv_empty_optional_cells_become_none(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,reference,scenario\nhello,,\n")
    [ex] = iter_examples(path, FieldMap())
    assert ex.scenario is None and ex.reference == ""


def test_json_array_across_chunk_boundaries(tmp_path, monkeypatch):
    # Tiny read chunks force every element, string and number to straddle a boundary.
    monkeypatch.setattr("phasecheck.data_formats._CHUNK", 7)
    rows = [{"prompt": f"prompt number {i} " * 3, "n": 123456789 + i, "id": i} for i in range(50)]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows, indent=1))
    ex = list(iter_examples(path, FieldMap()))
    assert [e.columns["n"] for e in ex] == [r["n"] for r in rows]
    assert ex[-1].prompt == rows[-1]["prompt"]
    path.write_text(json.dumps(rows[:3], indent=1)[:-1] + ', {"prompt": }]')
    with pytest.raises(DataError, match=r"d.json:\d+: row 4: invalid JSON"):
        list(iter_examples(path, FieldMap()))


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_iteration_streams_large_files(tmp_path, fmt):
    pytest.importorskip("psutil")
    path = tmp_path / f"big.{fmt}"
    n = 200_000
    text = "x" * 500
    with open(path, "w") as fh:
        fh.write("[\n" if fmt == "json" else "")
        for i in range(n):
            sep = "," if fmt == "json" and i < n - 1 else ""
            fh.write(json.dumps({"prompt": f"{i} {text}", "completion": text, "k": i}) + sep + "\n")
        fh.write("]\n" if fmt == "json" else "")
    # ~200k records x ~1.3 KB would be ~250 MB held in memory; a streamed pass stays far below.
    base = peak = _rss_mb()
    count = 0
    for i, d in enumerate(iter_demonstrations(path, FieldMap(id=None))):  # noqa: B007 - d, the last row, is read after
        count += 1
        if i % 10_000 == 0:
            peak = max(peak, _rss_mb())
    assert count == n and d.row == n
    assert peak - base < 100, f"RSS grew {peak - base:.0f} MB while streaming {n} rows"


def test_file_hash_follows_content_not_path(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", ROWS)
    b = tmp_path / "sub" / "b.jsonl"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    assert file_hash(a) == file_hash(b)
    assert file_hash(a).startswith("sha256:") and len(file_hash(a)) == 7 + 64
    b.write_bytes(a.read_bytes() + b"\n")
    assert file_hash(a) != file_hash(b)


def test_directory_hash_covers_names_and_contents(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    d1, d2 = write_format(tmp_path / "one", "saved", ROWS[:2]), write_format(tmp_path / "two", "saved", ROWS[:2])
    assert file_hash(d1) == file_hash(d2)
    (d2 / "extra.txt").write_text("")
    assert file_hash(d1) != file_hash(d2)
    (d2 / "extra.txt").rename(d2 / "other.txt")
    h = file_hash(d2)
    (d2 / "other.txt").rename(d2 / "extra.txt")
    assert h != file_hash(d2)


def test_data_hashes_for_present_roles(tmp_path):
    write_jsonl(tmp_path / "e.jsonl", ROWS)
    write_jsonl(tmp_path / "s.jsonl", ROWS[:1])
    task_file = tmp_path / "task.yaml"
    task_file.write_text("name: t\ndata: {eval: e.jsonl, samples: s.jsonl}\n")
    hashes = data_hashes(load_task(task_file))
    assert set(hashes) == {"eval", "samples"}
    assert hashes["eval"] == file_hash(tmp_path / "e.jsonl") != hashes["samples"]
    (tmp_path / "s.jsonl").unlink()
    with pytest.raises(DataError, match=r"s.jsonl: data file not found \(data.samples in "):
        data_hashes(load_task(task_file))


def test_saved_dataset_dict_single_split_and_several(tmp_path):
    import datasets

    dd = datasets.DatasetDict({"test": datasets.Dataset.from_list([{"prompt": "p"}])})
    dd.save_to_disk(str(tmp_path / "one"))
    assert [e.prompt for e in iter_examples(tmp_path / "one", FieldMap())] == ["p"]
    dd["train"] = dd["test"]
    dd.save_to_disk(str(tmp_path / "two"))
    with pytest.raises(DataError, match="splits test, train; point the task at one split"):
        list(iter_examples(tmp_path / "two", FieldMap()))
    assert [e.prompt for e in iter_examples(tmp_path / "two" / "train", FieldMap())] == ["p"]


@pytest.mark.parametrize(
    "name, text", [("d.jsonl", '{"prompt": "p"}\n'), ("d.csv", "prompt\np\n"), ("d.json", '[{"prompt": "p"}]')]
)
def test_utf8_bom_is_accepted(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert [e.prompt for e in iter_examples(path, FieldMap())] == ["p"]
