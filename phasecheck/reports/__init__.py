"""Render a saved verdict as text, JSON, JUnit XML or HTML, and load verdict.json back.
Reporters are plugins (group `phasecheck.reporters`); none of this imports torch or re-samples."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..results import Verdict, load_verdict
from ..stages import stage
from .common import compare_verdicts

__all__ = [
    "render",
    "write_reports",
    "load_verdict",
    "reporter",
    "compare_verdicts",
    "FORMATS",
    "use_color",
    "use_unicode",
]

# Built-in format names; a third-party reporter registered under another name works too.
FORMATS = ("text", "json", "junit", "html")


def use_color(stream: Any = None) -> bool:
    """ANSI colour only on a TTY, and never when NO_COLOR is set (https://no-color.org)."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def use_unicode(stream: Any = None) -> bool:
    """Whether `stream` (stdout by default) can show ✓/✗; otherwise the checklist uses [OK]/[X]."""
    stream = stream if stream is not None else sys.stdout
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding in ("utf8", "utf8sig")


def reporter(fmt: str, **params: Any) -> Any:
    """An instance of the reporter plugin for `fmt`, its Params validated (errors name `reporters.<fmt>`)."""
    from ..plugins import load, validate_params

    cls = load("reporters", fmt)
    if not isinstance(getattr(cls, "filename", None), str):
        raise ConfigError(f"reporter {fmt!r} has no `filename` class attribute")
    return cls(validate_params(cls, params, f"reporters.{fmt}"))


def render(
    verdict: Verdict, fmt: str, *, out_dir: Path | None = None, verbose: int = 0, color: bool | None = None
) -> str:
    """`verdict` as `fmt`. For text, colour and symbols follow stdout unless `color` is given;
    `out_dir` is where verdict.json lives, so artifacts (samples.jsonl, metrics) can be found."""
    params: dict[str, Any] = {}
    if fmt == "text":
        params = {"color": use_color() if color is None else color, "unicode": use_unicode()}
    out = Path(out_dir) if out_dir is not None else None
    with stage(f"{fmt} report"):
        return reporter(fmt, **params).render(verdict, out_dir=out, verbose=verbose)


def write_reports(verdict: Verdict, out_dir: Path, formats: Sequence[str]) -> dict[str, Path]:
    """Write each format's file (verdict.json, report.txt, junit.xml, report.html) atomically into
    `out_dir`; returns format -> path. Files are plain UTF-8 without colour."""
    from ..atomic import atomic_write_text

    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    # verdict.json first: the other reports point at it and at artifacts beside it.
    for fmt in sorted(dict.fromkeys(formats), key=lambda f: f != "json"):
        params = {"color": False, "unicode": True} if fmt == "text" else {}
        with stage(f"{fmt} report"):
            rep = reporter(fmt, **params)
            text = rep.render(verdict, out_dir=out_dir, verbose=1 if fmt == "text" else 0)
            written[fmt] = atomic_write_text(out_dir / rep.filename, text)
    return written
