"""`python` verifier: a user function "module:function" with TRL's reward signature, loaded by entry point."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ..errors import ConfigError, VerifierError
from .base import Judgement, StrictParams, Verifier

__all__ = ["PythonFunction"]


class PythonFunction(Verifier):
    """Calls `fn(answers, **columns) -> list[float | None]`; scores outside [0, 1] are an error."""

    needs_reference = False

    class Params(StrictParams):
        function: str = Field(description='"module:function", importable from the task file\'s directory.')

        @field_validator("function")
        @classmethod
        def _shape(cls, v: str) -> str:
            mod, sep, attr = v.partition(":")
            if not sep or not mod.strip() or not attr.strip():
                raise ValueError(f'{v!r} must look like "module:function"')
            return v

    def __init__(self, params=None, vocabulary=None, **context: Any):
        super().__init__(params, vocabulary, **context)
        self.fn = self._load(self.params.function, context.get("base_dir"))

    @staticmethod
    def _load(ref: str, base_dir: Path | str | None) -> Callable:
        added = base_dir is not None and str(base_dir) not in sys.path
        if added:
            sys.path.insert(0, str(base_dir))
        try:
            fn = EntryPoint(name="python", value=ref, group="phasecheck.verifiers").load()
        except Exception as exc:  # noqa: BLE001 - any import failure is a config error for the user
            raise ConfigError(
                f"grader.verifier.function: cannot load {ref!r} ({exc.__class__.__name__}: {exc})"
            ) from None
        finally:
            if added:
                sys.path.remove(str(base_dir))
        if not callable(fn):
            raise ConfigError(f"grader.verifier.function: {ref!r} is not callable")
        return fn

    def judge(self, answers: Sequence[str | None], **columns: Any) -> list[Judgement]:
        ref = self.params.function
        try:
            got = self.fn(list(answers), **columns)
        except Exception as exc:  # noqa: BLE001 - a crashing user verifier judges nothing, the run goes on
            return [Judgement.error(f"{ref} raised {exc.__class__.__name__}: {exc}")] * len(answers)
        if not isinstance(got, (list, tuple)) or len(got) != len(answers):
            n = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
            raise VerifierError(f"{ref}: returned {n} scores for {len(answers)} answers; return one per answer")
        out = []
        for a, s in zip(answers, got):
            if s is None:
                out.append(
                    Judgement.unparsed(f"{ref} could not judge")
                    if a is None
                    else Judgement.error(f"{ref} returned None")
                )
            elif isinstance(s, bool) or (isinstance(s, (int, float)) and math.isfinite(s) and 0 <= s <= 1):
                out.append(Judgement(float(s), f"{ref} scored {float(s):g}"))
            else:
                raise VerifierError(f"{ref}: returned {s!r}; scores must be in [0, 1] or None")
        return out
