"""Data files -> Example / Demonstration records, streamed, with every bad row named by file and row.

Formats (read in data_formats.py): JSONL, JSON (a list of objects, or one object per line), CSV/TSV,
Parquet, and a saved `datasets` directory. Rows are 1-based; for JSONL the row number is the line number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from .data_formats import SUPPORTED_FORMATS, raw_rows, show_path
from .errors import DataError
from .records import Demonstration, Example
from .task import FieldMap, TaskSpec

__all__ = [
    "Loaded",
    "iter_examples",
    "iter_demonstrations",
    "load_examples",
    "load_demonstrations",
    "file_hash",
    "data_hashes",
    "SUPPORTED_FORMATS",
]

T = TypeVar("T", bound=Example)
OnBadRows = Literal["error", "skip"]

_CHUNK = 1 << 20
_SHOWN_REASONS = 3


class _Bad(Exception):
    """A row-level problem; becomes a DataError or a skipped-row entry."""


# --- rows -> records ---------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _missing(role: str, col: str, explicit: bool) -> str:
    if explicit:
        return f"field {col!r} is missing (fields.{role} maps the {role} to {col!r})"
    return f"field {col!r} is missing (set fields.{role} to the column that holds the {role})"


def _check_prompt(col: str, value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise _Bad(f"field {col!r} is empty")
        return value
    if isinstance(value, list):
        if not value:
            raise _Bad(f"field {col!r} is an empty message list")
        for i, m in enumerate(value, 1):
            if not isinstance(m, dict):
                raise _Bad(f'field {col!r}: message {i} is a {_kind(m)}, not a {{"role": ..., "content": ...}} object')
            for key in ("role", "content"):
                if key not in m:
                    raise _Bad(f"field {col!r}: message {i} has no {key!r}")
                if not isinstance(m[key], str):
                    raise _Bad(f"field {col!r}: message {i} {key!r} must be a string, got {_kind(m[key])}")
        return value
    raise _Bad(
        f'field {col!r} must be a string or a chat message list [{{"role": ..., "content": ...}}], got {_kind(value)}'
    )


def _builder(fields: FieldMap, cls: type, source: str) -> Callable[[Any, int], Any]:
    """A row -> record function for one file; it also remembers ids to reject duplicates."""
    explicit = fields.model_fields_set
    id_col, p_col, r_col, s_col = fields.id, fields.prompt, fields.reference, fields.scenario
    c_col = fields.completion if cls is Demonstration else None
    mapped = {c for c in (id_col, p_col, r_col, s_col, c_col) if c is not None}
    # A column mapped on purpose must be there; a default mapping is optional (ids fall back to row-<n>).
    id_required = id_col is not None and "id" in explicit
    r_required, s_required = "reference" in explicit, "scenario" in explicit
    seen: dict[str, int] = {}

    def build(row: Any, n: int):
        if not isinstance(row, dict):
            raise _Bad(f"expected an object with fields, got {_kind(row)}")
        rid = _read_id(row, id_col, id_required, n)
        if rid in seen:
            raise _Bad(f"duplicate id {rid!r} (first used in row {seen[rid]})")
        if p_col not in row:
            raise _Bad(_missing("prompt", p_col, "prompt" in explicit))
        prompt = _check_prompt(p_col, row[p_col])
        if r_col is None or (r_col not in row and not r_required):
            ref = None
        elif r_col not in row:
            raise _Bad(_missing("reference", r_col, True))
        else:
            ref = row[r_col]
        scenario = _read_scenario(row, s_col, s_required)
        columns = {k: v for k, v in row.items() if k not in mapped}
        if c_col is None:
            rec = Example(
                id=rid, prompt=prompt, reference=ref, scenario=scenario, source=source, row=n, columns=columns
            )
        else:
            if c_col not in row:
                raise _Bad(_missing("completion", c_col, "completion" in explicit))
            completion = row[c_col]
            if not isinstance(completion, str):
                raise _Bad(f"field {c_col!r} (the completion) must be a string, got {_kind(completion)}")
            rec = Demonstration(
                id=rid,
                prompt=prompt,
                reference=ref,
                scenario=scenario,
                source=source,
                row=n,
                columns=columns,
                completion=completion,
            )
        if id_col is not None:  # generated row-<n> ids are unique by construction
            seen[rid] = n
        return rec

    return build


def _read_id(row: dict, col: str | None, required: bool, n: int) -> str:
    """The row's id as text; `row-<n>` when the file has no id column and none was mapped on purpose."""
    if col is None or (col not in row and not required):
        return f"row-{n}"
    if col not in row:
        raise _Bad(_missing("id", col, True))
    rid = row[col]
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise _Bad(f"field {col!r} (the id) must be a string or an integer, got {_kind(rid)}")
    if not str(rid):
        raise _Bad(f"field {col!r} (the id) is empty")
    return str(rid)


def _read_scenario(row: dict, col: str | None, required: bool) -> str | None:
    """The row's scenario as text, None when absent or empty."""
    if col is None or (col not in row and not required):
        return None
    if col not in row:
        raise _Bad(_missing("scenario", col, True))
    scenario = row[col]
    if scenario == "" or scenario is None:
        return None
    if not isinstance(scenario, (str, int)) or isinstance(scenario, bool):
        raise _Bad(f"field {col!r} (the scenario) must be a string, got {_kind(scenario)}")
    return str(scenario)


def _iter(path: Path, fields: FieldMap, cls: type, on_bad_rows: str, skipped: list | None) -> Iterator:
    if on_bad_rows not in ("error", "skip"):
        raise DataError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")
    path = Path(path)
    show = show_path(path)
    # Columns every row needs, checked once against a header where the format has one.
    need = {"prompt": fields.prompt}
    if cls is Demonstration:
        need["completion"] = fields.completion
    for role in ("id", "reference", "scenario"):
        col = getattr(fields, role)
        if col is not None and role in fields.model_fields_set:
            need[role] = col
    build = _builder(fields, cls, str(path))
    for n, line, value, error in raw_rows(path, show, need):
        try:
            if error is not None:
                raise _Bad(error)
            record = build(value, n)
        except _Bad as bad:
            if on_bad_rows == "error":
                where = f"{show}:{line}" if line else show
                raise DataError(f"{where}: row {n}: {bad}") from None
            if skipped is not None:
                skipped.append((n, str(bad)))
            continue
        yield record


def iter_examples(
    path: Path, fields: FieldMap, *, on_bad_rows: OnBadRows = "error", skipped: list | None = None
) -> Iterator[Example]:
    """Stream Examples from a data file; with on_bad_rows="skip", bad rows go to `skipped` as (row, reason)."""
    return _iter(path, fields, Example, on_bad_rows, skipped)


def iter_demonstrations(
    path: Path, fields: FieldMap, *, on_bad_rows: OnBadRows = "error", skipped: list | None = None
) -> Iterator[Demonstration]:
    """Stream Demonstrations (examples with a completion) from a data file."""
    return _iter(path, fields, Demonstration, on_bad_rows, skipped)


# --- whole files -------------------------------------------------------------------------------


@dataclass
class Loaded(Generic[T]):
    """The records of one data file, and the rows skipped as bad (row, reason)."""

    records: list[T]
    path: Path
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[T]:
        return iter(self.records)

    def summary(self) -> str:
        """e.g. "120 rows from data/eval.jsonl (3 bad rows skipped: row 4: ...; ...)"."""
        text = f"{len(self.records)} rows from {show_path(self.path)}"
        if self.skipped:
            shown = "; ".join(f"row {n}: {why}" for n, why in self.skipped[:_SHOWN_REASONS])
            more = "; ..." if len(self.skipped) > _SHOWN_REASONS else ""
            plural = "row" if len(self.skipped) == 1 else "rows"
            text += f" ({len(self.skipped)} bad {plural} skipped: {shown}{more})"
        return text


def _role_path(task: TaskSpec, role: str) -> Path:
    path = getattr(task.data, role)
    where = task.source or task.name
    if path is None:
        raise DataError(f"{where}: data.{role} is not set; add `data: {{{role}: FILE}}` to the task file")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{show_path(path)}: data file not found (data.{role} in {where})")
    return path


def _load(task: TaskSpec, role: str, cls: type) -> Loaded:
    path = _role_path(task, role)
    skipped: list[tuple[int, str]] = []
    records = list(_iter(path, task.data.fields, cls, task.data.on_bad_rows, skipped))
    loaded = Loaded(records=records, path=path, skipped=skipped)
    if not records:
        why = f"every row was bad: {loaded.summary()}" if skipped else "no rows"
        raise DataError(f"{show_path(path)}: {why} (data.{role} in {task.source or task.name})")
    return loaded


def load_examples(task: TaskSpec) -> Loaded[Example]:
    """All Examples of task.data.eval."""
    return _load(task, "eval", Example)


def load_demonstrations(task: TaskSpec) -> Loaded[Demonstration]:
    """All Demonstrations of task.data.train."""
    return _load(task, "train", Demonstration)


# --- hashes ------------------------------------------------------------------------------------


def _hash_file(h: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's sorted relative paths and contents: "sha256:<hex>"."""
    path = Path(path)
    h = hashlib.sha256()
    try:
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = f.relative_to(path).as_posix()
                # Length-prefixed so that moving bytes between a name and a file changes the hash.
                h.update(f"{len(rel)}:{rel}:{f.stat().st_size}:".encode())
                _hash_file(h, f)
        else:
            _hash_file(h, path)
    except FileNotFoundError:
        raise DataError(f"{show_path(path)}: data file not found") from None
    except OSError as exc:
        raise DataError(f"{show_path(path)}: cannot read ({exc.strerror or exc})") from None
    return f"sha256:{h.hexdigest()}"


def data_hashes(task: TaskSpec) -> dict[str, str]:
    """file_hash of each data file the task names: keys among eval, train, samples."""
    return {
        role: file_hash(_role_path(task, role))
        for role in ("eval", "train", "samples")
        if getattr(task.data, role) is not None
    }
