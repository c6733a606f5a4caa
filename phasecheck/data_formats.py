"""Raw rows of each data format, streamed: (row, line or None, value, parse error or None).

Row numbers are 1-based; for JSONL (and JSON lines in a .json file) the row number is the line number.
File-level problems raise DataError; a row that cannot be parsed comes back with its error text.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import DataError

__all__ = ["raw_rows", "show_path", "SUPPORTED_FORMATS"]

SUPPORTED_FORMATS = ".jsonl/.ndjson (JSON lines), .json, .csv, .tsv, .parquet, or a saved `datasets` directory"
_CHUNK = 1 << 20
_MAX_JSON_ROW = 64 << 20  # a single JSON row (or JSONL line) larger than this is a broken file, not a row
MAX_DEPTH = 64  # nesting levels a row's JSON value may have; data rows are flat records
_WS = re.compile(r"[ \t\n\r]*")


def show_path(path: Path) -> str:
    """The path as the user most likely typed it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def _too_deep(value: object, limit: int) -> bool:
    """Whether `value` nests lists/objects deeper than `limit` (iterative: it must not recurse itself)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in v if isinstance(c, (dict, list)))
    return False


def _decode_row(decode, text: str, brackets: int) -> tuple[object, str | None]:
    """(value, None) or (None, why): JSON decoded within the depth limit. Python's decoder recurses, so a
    value nested thousands deep raises RecursionError; shallower but deep values would break later readers."""
    try:
        value = decode(text)
    except RecursionError:
        return None, f"JSON nested deeper than {MAX_DEPTH} levels"
    except ValueError as exc:
        msg = str(getattr(exc, "msg", exc)).removesuffix(" starting at")
        return None, f"invalid JSON: {msg}"
    # Only a row with that many brackets can be that deep; the walk is skipped for ordinary rows.
    if brackets > MAX_DEPTH and _too_deep(value, MAX_DEPTH):
        return None, f"JSON nested deeper than {MAX_DEPTH} levels"
    return value, None


def _lines(fh) -> Iterator[tuple[bytes, bool]]:
    """(line, whole) with lines bounded by _MAX_JSON_ROW: an overlong line is cut, the rest skipped."""
    while line := fh.readline(_MAX_JSON_ROW + 1):
        if len(line) <= _MAX_JSON_ROW or line.endswith(b"\n"):
            yield line, True
            continue
        while (rest := fh.readline(_CHUNK)) and not rest.endswith(b"\n"):
            pass
        yield b"", False


def _rows_jsonl(path: Path, show: str) -> Iterator[tuple]:
    # Read bytes and decode per line, so a bad byte is one bad row, not a dead file.
    decode = json.JSONDecoder().decode
    with open(path, "rb") as fh:
        for line_no, (line, whole) in enumerate(_lines(fh), 1):
            if not whole:
                yield line_no, line_no, None, f"line longer than {_MAX_JSON_ROW >> 20} MiB"
                continue
            try:
                text = line.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError:
                yield line_no, line_no, None, "not valid UTF-8 text"
                continue
            if not text.strip():
                continue
            value, error = _decode_row(decode, text, line.count(b"[") + line.count(b"{"))
            yield line_no, line_no, value, error


def _rows_json(path: Path, show: str) -> Iterator[tuple]:
    """A JSON array parsed incrementally (raw_decode per element), or JSON lines in a .json file."""
    with open(path, encoding="utf-8-sig") as fh:
        try:
            head = fh.read(_CHUNK)
        except UnicodeDecodeError:
            raise DataError(f"{show}: not valid UTF-8 text") from None
        start = head.lstrip(" \t\r\n")
        if not start:
            return
        if start[0] == "{":
            first = start.split("\n", 1)[0]
            try:
                json.loads(first)
            except ValueError:
                raise DataError(
                    f"{show}:1: a .json data file must hold a list of row objects [{{...}}, ...] "
                    "or one object per line; this one holds a single multi-line object"
                ) from None
            fh.close()
            yield from _rows_jsonl(path, show)
            return
        if start[0] != "[":
            raise DataError(
                f"{show}:1: a .json data file must hold a list of row objects [{{...}}, ...] "
                f"or one object per line; it starts with {start[:20]!r}"
            )
        try:
            yield from _json_array(fh, head, show)
        except UnicodeDecodeError:
            raise DataError(f"{show}: not valid UTF-8 text") from None


def _json_array(fh, buf: str, show: str) -> Iterator[tuple]:
    yield from _JsonArray(fh, buf, show).rows()


class _JsonArray:
    """A JSON array read one element at a time from a text stream, in chunks: (row, line, value, problem)."""

    def __init__(self, fh, buf: str, show: str) -> None:
        self.fh, self.buf, self.show = fh, buf, show
        self.pos, self.line, self.eof = 0, 1, False
        self.dec = json.JSONDecoder()

    def more(self) -> bool:
        chunk = "" if self.eof else self.fh.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def skip_ws(self) -> str:
        """Move past whitespace (counting lines); the next character, or "" at the end of the file."""
        while True:
            end = _WS.match(self.buf, self.pos).end()
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def decode(self, row: int) -> tuple:
        """The value at pos and where it ends, reading more of the file while the value is cut off."""
        while True:
            try:
                value, end = self.dec.raw_decode(self.buf, self.pos)
                # A number cut at the chunk edge decodes as a shorter number: read on and retry.
                if end == len(self.buf) and self.more():
                    continue
                return value, end
            except RecursionError:
                raise DataError(
                    f"{self.show}:{self.line}: row {row}: JSON nested deeper than {MAX_DEPTH} levels"
                ) from None
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos < _MAX_JSON_ROW and self.more():
                    continue
                raise DataError(
                    f"{self.show}:{self.line + self.buf.count(chr(10), self.pos, exc.pos)}: row {row}: "
                    f"invalid JSON: {exc.msg.removesuffix(' starting at')}"
                ) from None

    def rows(self) -> Iterator[tuple]:
        show = self.show
        self.skip_ws()
        self.pos += 1  # the "[" checked by the caller
        if self.skip_ws() == "]":
            return
        row = 0
        while True:
            if self.skip_ws() == "":
                raise DataError(f"{show}:{self.line}: invalid JSON: the list is not closed with ']'")
            value, end = self.decode(row + 1)
            row += 1
            deep = _too_deep(value, MAX_DEPTH)
            yield (
                row,
                self.line,
                None if deep else value,
                f"JSON nested deeper than {MAX_DEPTH} levels" if deep else None,
            )
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            sep = self.skip_ws()
            if sep == "]":
                break
            if sep != ",":
                raise DataError(
                    f"{show}:{self.line}: invalid JSON after row {row}: expected ',' or ']', found {sep or 'end of file'!r}"
                )
            self.pos += 1
        self.pos += 1
        if self.skip_ws() != "":
            raise DataError(f"{show}:{self.line}: invalid JSON: extra data after the closing ']'")


def _check_columns(show: str, columns: list[str], need: dict[str, str]) -> None:
    for role, col in need.items():
        if col not in columns:
            raise DataError(
                f"{show}: column {col!r} is missing (fields.{role} maps the {role} to {col!r}); "
                f"the columns are: {', '.join(map(str, columns)) or '(none)'}"
            )


def _rows_csv(path: Path, show: str, need: dict[str, str]) -> Iterator[tuple]:
    # A long prompt easily exceeds csv's 128 KiB default cell limit.
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_JSON_ROW))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            _check_columns(show, header, need)
            width, row, line = len(header), 0, reader.line_num + 1
            for cells in reader:
                row += 1
                if len(cells) != width:
                    yield row, line, None, f"has {len(cells)} cells, the header has {width}"
                else:
                    yield row, line, dict(zip(header, cells)), None
                line = reader.line_num + 1
        except UnicodeDecodeError:
            raise DataError(f"{show}: not valid UTF-8 text") from None
        except csv.Error as exc:
            raise DataError(f"{show}:{reader.line_num}: invalid CSV: {exc}") from None


def _rows_parquet(path: Path, show: str, need: dict[str, str]) -> Iterator[tuple]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{show}: not a readable Parquet file ({exc})") from None
    _check_columns(show, pf.schema_arrow.names, need)
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for value in batch.to_pylist():
                row += 1
                yield row, None, value, None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{show}: row {row + 1}: cannot read Parquet data ({exc})") from None


def _rows_saved(path: Path, show: str, need: dict[str, str]) -> Iterator[tuple]:
    if not ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        raise DataError(
            f"{show}: a directory, but not one written by `datasets` save_to_disk "
            f"(no state.json or dataset_dict.json); supported: {SUPPORTED_FORMATS}"
        )
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a damaged directory
        raise DataError(f"{show}: cannot load the saved dataset ({exc.__class__.__name__}: {exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise DataError(
                f"{show}: a DatasetDict with splits {', '.join(ds)}; point the task at one split "
                f"directory, e.g. {show}/{next(iter(ds), 'train')}"
            )
        ds = next(iter(ds.values()))
    _check_columns(show, ds.column_names, need)
    row = 0
    for batch in ds.with_format("arrow").iter(batch_size=1024):
        for value in batch.to_pylist():
            row += 1
            yield row, None, value, None


def raw_rows(path: Path, show: str, need: dict[str, str]) -> Iterator[tuple]:
    """Rows of any supported file; `need` maps role -> column that a header-carrying format must have."""
    if not path.exists():
        raise DataError(f"{show}: data file not found")
    if path.is_dir():
        return _rows_saved(path, show, need)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _rows_jsonl(path, show)
    if suffix == ".json":
        return _rows_json(path, show)
    if suffix in (".csv", ".tsv"):
        return _rows_csv(path, show, need)
    if suffix in (".parquet", ".pq"):
        return _rows_parquet(path, show, need)
    raise DataError(f"{show}: unknown data format {suffix or '(no extension)'!r}; supported: {SUPPORTED_FORMATS}")
