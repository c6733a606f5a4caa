"""verdict.json: the verdict itself, schema `phasecheck.verdict/1` (`phasecheck schema --verdict` prints it)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..results import Verdict
from ..strict import Strict
from .base import Reporter

__all__ = ["JsonReporter"]


class JsonReporter(Reporter):
    """The machine-readable verdict; key order is fixed so identical runs give identical files."""

    filename: ClassVar[str] = "verdict.json"

    class Params(Strict):
        """No options."""

    def render(self, verdict: Verdict, *, out_dir: Path | None = None, verbose: int = 0) -> str:
        return verdict.to_json()
