"""The shared JSONL reader behind the samples, validated-set and report-artifact readers."""

import json

import pytest

from phasecheck.errors import DataError
from phasecheck.jsonl import json_lines
from phasecheck.sampling.replay import read_samples
from phasecheck.training.sft import read_validated


def test_rows_keep_their_line_numbers_and_unicode_line_separators(tmp_path):
    path = tmp_path / "v.jsonl"
    # json.dumps(ensure_ascii=False) leaves U+2028 and U+0085 raw; they must not split a row.
    rows = [{"prompt": "p", "completion": "a\u2028b\x85c"}, [1, 2]]
    path.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n\n  \n" + json.dumps(rows[1]) + "\n", encoding="utf-8")
    assert list(json_lines(path)) == [(1, rows[0]), (4, rows[1])]
    with pytest.raises(DataError, match=r"v.jsonl:4: a validated row needs `prompt`"):
        read_validated(path)


@pytest.mark.parametrize(
    "content, what, message",
    [
        (None, "samples file", r"s.jsonl: samples file not found$"),
        (b'{"a": 1}\n{"a": \n', "file", r"s.jsonl:2: invalid JSON \(Expecting value\)$"),
        (b'{"a": 1}\n{"a": "\xff"}\n', "validated set", r"s.jsonl:2: not valid UTF-8 text$"),
    ],
)
def test_errors_name_file_and_line(tmp_path, content, what, message):
    path = tmp_path / "s.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        list(json_lines(path, what))


def test_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r": cannot read samples file \(Is a directory\)"):
        read_samples(tmp_path)


def test_completion_with_line_separator_replays(tmp_path):
    path = tmp_path / "s.jsonl"
    row = {"example_id": "a", "run": 0, "index": 0, "completion": "x\u2029y"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert [s.completion for s in read_samples(path)] == ["x\u2029y"]
