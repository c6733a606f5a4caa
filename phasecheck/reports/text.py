"""The terminal checklist (also saved as report.txt): one line per check, then the status and the action.
ASCII symbols when the terminal cannot show UTF-8; ANSI colour only when asked (a TTY without NO_COLOR)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..names import CheckId, CheckMetric
from ..results import CheckResult, Phase, Status, Verdict
from ..strict import Strict
from .base import Reporter
from .common import advisory, clean_terminal, coverage_ends, find_check, grading_note, phase_label

__all__ = ["TextReporter", "SYMBOLS", "ASCII_SYMBOLS", "to_ascii", "paint"]

SYMBOLS = {Status.PASS: "[✓]", Status.FAIL: "[✗]", Status.WARN: "[!]", Status.SKIP: "[-]", Status.ERROR: "[E]"}
ASCII_SYMBOLS = {Status.PASS: "[OK]", Status.FAIL: "[X]", Status.WARN: "[!]", Status.SKIP: "[-]", Status.ERROR: "[E]"}
_COLORS = {Status.PASS: "32", Status.FAIL: "31", Status.WARN: "33", Status.SKIP: "2", Status.ERROR: "35"}
_PHASE_COLORS = {Phase.GRADUATED: "1;32", Phase.GRPO_PHASE: "1;31", Phase.INCONCLUSIVE: "1;35"}
_ASCII_MAP = str.maketrans(
    {
        "→": "->",
        "≥": ">=",
        "≤": "<=",
        "×": "x",
        "–": "-",
        "—": "-",
        "…": "...",
        "✓": "OK",
        "✗": "X",
        "−": "-",
        "±": "+/-",
        "≈": "~",
        "·": "-",
        "’": "'",
        "“": '"',
        "”": '"',
    }
)
QUESTION_WIDTH = 48
# A prohibition in the action line gets a line of its own, so nobody reads past it.
_PROHIBITION = re.compile(r"(?<=[.!])\s+(?=(?:Do not|Don't|Never)\b)")


def to_ascii(text: str) -> str:
    """Readable ASCII for a terminal that cannot show UTF-8; unknown characters become '?'."""
    return text.translate(_ASCII_MAP).encode("ascii", "replace").decode("ascii")


def paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


class TextReporter(Reporter):
    """The checklist an engineer reads at a terminal."""

    filename: ClassVar[str] = "report.txt"

    class Params(Strict):
        unicode: bool = Field(True, description="Use ✓/✗ and arrows; False gives the ASCII fallback.")
        color: bool = Field(False, description="ANSI colours (the CLI turns this on for a TTY without NO_COLOR).")

    def render(self, verdict: Verdict, *, out_dir: Path | None = None, verbose: int = 0) -> str:
        p = self.params
        symbols = SYMBOLS if p.unicode else ASCII_SYMBOLS
        pad = max(len(s) for s in symbols.values())
        width = max([QUESTION_WIDTH] + [len(self._question(c)) + 1 for c in verdict.checks])
        lines = ["Checking graduation criteria..."]
        for check in verdict.checks:
            symbol = symbols[check.status]
            # [OK] is wider than [X]: pad so the questions line up in the ASCII fallback too
            gap = " " * (pad - len(symbol) + 1)
            symbol = paint(symbol, _COLORS[check.status], p.color)
            lines.append(f"{symbol}{gap}{self._question(check).ljust(width)} {clean_terminal(check.headline)}".rstrip())
            if verbose >= 1:
                lines.extend(self._details(check, verbose))
        if coverage := _coverage_line(verdict):
            lines.append(coverage)
        if note := grading_note(verdict):
            lines.append(note)
        arrow = "→" if p.unicode else "->"
        lines.append(f"{arrow} Status: {paint(phase_label(verdict.status), _PHASE_COLORS[verdict.status], p.color)}")
        action = _PROHIBITION.split(verdict.action.strip())
        lines.append(f"Action: {action[0]}")
        lines.extend(action[1:])
        if verdict.compare:
            lines.extend(self._compare(verdict.compare, arrow, verbose))
        text = "\n".join(lines) + "\n"
        return text if p.unicode else to_ascii(text)

    @staticmethod
    def _question(check: CheckResult) -> str:
        return f"{check.question} (advisory)" if advisory(check) else check.question

    @staticmethod
    def _details(check: CheckResult, verbose: int) -> list[str]:
        out = []
        for f in check.findings:
            ids = ""
            if f.example_ids:
                shown = ", ".join(f.example_ids[:5])
                more = f" +{len(f.example_ids) - 5} more" if len(f.example_ids) > 5 else ""
                ids = f" (rows: {shown}{more})"
            out.append(clean_terminal(f"      - {_one_line(f.message)}{ids}"))
        if verbose >= 2 and check.metrics:
            for key in sorted(check.metrics):
                value = json.dumps(check.metrics[key], sort_keys=True, ensure_ascii=False, default=str)
                out.append(f"      {key}: {value if len(value) <= 160 else value[:157] + '...'}")
        return out

    @staticmethod
    def _compare(diff: dict, arrow: str, verbose: int) -> list[str]:
        old = diff.get("old") or {}
        status = diff.get("status") or {}
        changed = [c for c in diff.get("checks", []) if c.get("changed")]
        head = (
            f"Since {old.get('created_at', 'the earlier verdict')}: "
            f"{_phase(status.get('old'))} {arrow} {_phase(status.get('new'))}, "
            f"{len(changed)} check{'s' if len(changed) != 1 else ''} changed"
        )
        lines = [head]
        if diff.get("regressed"):
            ids = [str(i) for i in diff["regressed"]]
            lines.append(f"Regressed: {', '.join(ids[:10])}" + (f" +{len(ids) - 10} more" if len(ids) > 10 else ""))
        if verbose >= 1:
            for c in changed:
                lines.append(
                    f"      {c['id']}: {c.get('old_status') or 'absent'} {arrow} "
                    f"{c.get('new_status') or 'absent'} ({c.get('new_headline') or c.get('old_headline')})"
                )
        return lines


def _coverage_line(verdict: Verdict) -> str | None:
    """'Coverage: pass@1 …, pass@m …, pass^m …' from the diversity check's curve, each with its interval."""
    check = find_check(verdict, CheckId.DIVERSITY)
    curve = (check.metrics.get(CheckMetric.COVERAGE) if check else None) or []
    return f"Coverage: {coverage_ends(curve)} (pass^k: all k correct)" if curve else None


def _phase(value: str | None) -> str:
    try:
        return phase_label(Phase(value))
    except ValueError:
        return str(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
