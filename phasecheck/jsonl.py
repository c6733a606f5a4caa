"""JSON lines files phasecheck writes itself (samples, validated sets, example data): written atomically,
read back one row at a time. Task data files go through data_formats.py, which reports a bad row and reads on."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .errors import DataError

__all__ = ["json_lines", "dumps_jsonl", "write_jsonl", "step_rows"]


def dumps_jsonl(rows: Iterable[Any]) -> str:
    """One JSON value per line, keys sorted and non-ASCII kept, so equal rows give equal bytes."""
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) + "\n" for r in rows)


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    return atomic_write_text(path, dumps_jsonl(rows))


def json_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, Any]]:
    """(line number, value) per non-blank line; `what` names the file in errors ("samples file")."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc.__class__.__name__})") from None
    # Split on b"\n" only: str.splitlines() also splits on U+2028 and U+0085, which json.dumps with
    # ensure_ascii=False leaves unescaped inside a completion.
    with fh:
        for line_no, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{line_no}: not valid UTF-8 text") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
            yield line_no, value


def step_rows(path: str | Path, up_to: int = 0, what: str = "training metrics") -> list[dict[str, Any]]:
    """A training run's metrics.jsonl: object rows with a numeric step, in step order, up to step `up_to`
    when given; a step written twice (a resumed run repeats steps) keeps its last row."""
    from .names import Metric

    rows: dict[float, dict[str, Any]] = {}
    for _, row in json_lines(path, what):
        at = row.get(Metric.STEP) if isinstance(row, dict) else None
        if isinstance(at, (int, float)) and not isinstance(at, bool) and (not up_to or at <= up_to):
            rows[at] = row
    return [rows[k] for k in sorted(rows)]
