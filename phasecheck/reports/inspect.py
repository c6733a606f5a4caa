"""The terminal drill-down behind `phasecheck inspect`: a check's findings, its failing samples, and the
rows that carry a contamination token (highlighted). Pure text builders; the CLI does the prompting."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..results import CheckResult, Verdict
from .common import (
    advisory,
    clean_terminal,
    cut,
    failing_samples,
    find_check,
    load_samples,
    row_id,
    split_on_token,
    token_rows,
)
from .text import ASCII_SYMBOLS, SYMBOLS, paint, to_ascii

__all__ = ["Inspector"]

_MAX_TEXT = 600


class Inspector:
    """Views of one saved verdict; `out_dir` is where verdict.json lives (its artifacts are beside it)."""

    def __init__(self, verdict: Verdict, out_dir: Path | None, *, color: bool = False, unicode: bool = True):
        self.verdict, self.out_dir, self.color, self.unicode = verdict, out_dir, color, unicode
        self._samples: list[dict[str, Any]] | None = None

    @property
    def samples(self) -> list[dict[str, Any]]:
        if self._samples is None:
            self._samples = load_samples(self.verdict, self.out_dir)
        return self._samples

    def check(self, check_id: str) -> CheckResult:
        """The check with this id, or a ConfigError that lists the ids this verdict has."""
        found = find_check(self.verdict, check_id)
        if found is None:
            ids = [c.id for c in self.verdict.checks]
            close = difflib.get_close_matches(check_id, ids, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"this verdict has: {', '.join(ids)}"
            raise ConfigError(f"--check {check_id!r}: no such check in the verdict; {hint}")
        return found

    def _out(self, text: str) -> str:
        return text if self.unicode else to_ascii(text)

    def checks_menu(self) -> str:
        symbols = SYMBOLS if self.unicode else ASCII_SYMBOLS
        lines = []
        for i, c in enumerate(self.verdict.checks, 1):
            tag = " (advisory)" if advisory(c) else ""
            n = len(c.findings)
            lines.append(
                f"{i:>2}. {symbols[c.status]} {c.id}{tag}: {clean_terminal(c.headline)}"
                f" [{n} finding{'s' if n != 1 else ''}]"
            )
        return self._out("\n".join(lines) + "\n")

    def findings(self, check: CheckResult) -> str:
        """The check's question, status, headline, numbered findings and key metrics."""
        lines = [
            f"{check.id}: {check.question}",
            f"status: {check.status.value}{' (advisory)' if advisory(check) else ' (blocking)'}  {check.headline}",
        ]
        if not check.findings:
            lines.append("no findings")
        for i, f in enumerate(check.findings, 1):
            lines.append(f"{i:>2}. {f.message}")
            if f.example_ids:
                more = f" +{len(f.example_ids) - 10} more" if len(f.example_ids) > 10 else ""
                lines.append(f"    rows: {', '.join(f.example_ids[:10])}{more}")
            for key in ("token", "rate", "n_rows", "position_consistency", "pass_rate_with", "pass_rate_without"):
                if key in f.data:
                    lines.append(f"    {key}: {_fmt(f.data[key])}")
        for key in sorted(
            k
            for k, v in check.metrics.items()
            if isinstance(v, (int, float, str))
            or (isinstance(v, list) and len(v) <= 8 and all(isinstance(x, (int, float)) for x in v))
        ):
            lines.append(f"  {key} = {_fmt(check.metrics[key])}")
        return self._out(clean_terminal("\n".join(lines)) + "\n")

    def failing(self, check: CheckResult, *, limit: int = 10, ids: list[str] | None = None) -> str:
        """Failing graded samples behind the check (or behind one finding's `ids`), up to `limit`."""
        if not self.samples:
            return "no samples.jsonl saved beside this verdict; failing examples cannot be shown\n"
        rows = failing_samples(self.verdict, check, self.samples)
        if ids is not None:
            wanted = set(ids)
            rows = [r for r in rows if row_id(r) in wanted]
        if not rows:
            return f"no failing samples for {check.id}\n"
        lines = [
            f"{len(rows)} failing sample{'s' if len(rows) != 1 else ''} for {check.id}"
            + (f", first {limit}:" if len(rows) > limit else ":")
        ]
        for r in rows[:limit]:
            lines.extend(self._sample(r))
        return "\n".join(lines) + "\n"

    def token(self, token: str, *, limit: int = 10, ids: list[str] | None = None) -> str:
        """Saved rows whose text carries `token`, each occurrence highlighted."""
        rows = token_rows(self.verdict, token, self.out_dir, ids or [])
        if not rows:
            return f"no saved row carries {token!r}\n"
        lines = [
            f"{len(rows)} row{'s' if len(rows) != 1 else ''} carry {token!r}"
            + (f", first {limit}:" if len(rows) > limit else ":")
        ]
        for r in rows[:limit]:
            lines.extend(self._sample(r, token=token))
        return "\n".join(lines) + "\n"

    def _sample(self, r: dict[str, Any], token: str = "") -> list[str]:
        where = f"run {r['run']}.{r.get('index', 0)}" if "run" in r else r.get("artifact", "")
        head = (
            f"- {row_id(r)} [{r.get('outcome', '?')}] {where}"
            + (f" scenario {r['scenario']}" if r.get("scenario") else "")
            + (f" reward {r['reward']:g}" if isinstance(r.get("reward"), (int, float)) else "")
        )
        out = [self._out(clean_terminal(head))]
        if r.get("prompt"):
            out.append("    prompt:     " + self._indent(clean_terminal(_cut(str(r["prompt"])))))
        out.append("    completion: " + self._indent(self._highlight(str(r.get("completion", "")), token)))
        if r.get("detail"):
            out.append("    detail:     " + self._indent(clean_terminal(_cut(str(r["detail"])))))
        return out

    def _highlight(self, text: str, token: str) -> str:
        if token and token in text and len(text) > _MAX_TEXT:
            at = text.find(token)
            start = max(0, at - _MAX_TEXT // 2)
            text = (
                ("…" if start else "")
                + text[start : start + _MAX_TEXT]
                + ("…" if start + _MAX_TEXT < len(text) else "")
            )
        else:
            text = _cut(text)
        parts = []
        for piece, hit in split_on_token(text, token):
            piece = self._out(clean_terminal(piece))
            if hit:
                piece = paint(piece, "1;7", True) if self.color else f">>{piece}<<"
            parts.append(piece)
        return "".join(parts)

    def _indent(self, text: str) -> str:
        """Already-cleaned text, continued lines aligned under the first."""
        return self._out(text).replace("\n", "\n" + " " * 16)


def _cut(text: str) -> str:
    return cut(text, _MAX_TEXT)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)
