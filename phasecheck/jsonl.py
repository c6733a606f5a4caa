"""JSON lines files phasecheck writes itself (samples, validated sets, example data): written atomically,
read back one row at a time. Task data files go through data_formats.py, which reports a bad row and reads on."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import DataError
from .atomic import atomic_write_text

__all__ = ["json_lines", "dumps_jsonl", "write_jsonl"]


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
