"""The reporter contract: a plugin in group `phasecheck.reporters` renders a saved verdict as one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..results import Verdict
from ..strict import Strict

__all__ = ["Reporter"]


class Reporter:
    """Subclass, set `filename` (what `check` and `report` write) and `Params` (the options a task's
    `reports.<name>:` may set), and implement `render`. Everything a report shows comes from the verdict
    and the artifacts named in it, found under `out_dir`; a reporter never re-samples or re-grades."""

    filename: ClassVar[str]

    class Params(Strict):
        """No options."""

    def __init__(self, params: Any = None) -> None:
        self.params = params or self.Params()

    def render(
        self, verdict: Verdict, *, out_dir: Path | None = None, verbose: int = 0
    ) -> str:  # pragma: no cover - abstract
        raise NotImplementedError
