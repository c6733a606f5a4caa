"""The records that flow through a check: examples, demonstrations, samples and their grades."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Prompt", "Example", "Demonstration", "Sample", "Outcome", "Grade", "prompt_text", "GRADED_SAMPLE_FIELDS"]

# A prompt is plain text or a chat message list [{"role": ..., "content": ...}, ...].
Prompt = str | list


def prompt_text(prompt: Prompt) -> str:
    """The text of a prompt: the string itself, or its messages' contents joined by newlines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(m.get("content", "")) for m in prompt)


@dataclass(frozen=True, slots=True)
class Example:
    """One prompt the model is judged on. `source`/`row` say where it came from (row is 1-based)."""

    id: str
    prompt: Prompt
    reference: Any = None
    scenario: str | None = None
    source: str = ""
    row: int = 0
    columns: dict = field(default_factory=dict)  # unmapped columns, passed to verifiers as **columns

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Demonstration(Example):
    """An example with the completion someone intends to SFT on."""

    completion: str = ""


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled completion: run r, index i within the n samples of that run, drawn with `seed`."""

    example_id: str
    run: int
    index: int
    seed: int
    completion: str
    finish_reason: str = "stop"  # stop | length | error
    n_tokens: int = 0
    model: str = ""  # model identity hash, not a path
    engine: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# What a saved samples.jsonl adds to each Sample: its example's context and its grade. Replay reads
# such a file back and ignores these.
GRADED_SAMPLE_FIELDS = ("prompt", "reference", "scenario", "correct", "reward", "outcome", "detail")


class Outcome(str, enum.Enum):
    CORRECT = "correct"
    WRONG = "wrong"
    REFUSED = "refused"
    HEDGED = "hedged"
    UNPARSED = "unparsed"
    TIMEOUT = "timeout"
    TOO_LONG = "too_long"  # the answer is past what the verifier judges at a bounded cost
    ERROR = "error"


# Grades that could not be judged: verdict.json counts them per graded set, and the reports say so.
UNJUDGED = (Outcome.TIMEOUT, Outcome.TOO_LONG, Outcome.ERROR)


@dataclass(frozen=True, slots=True)
class Grade:
    """The verdict on one completion. `correct` is None when it could not be judged."""

    correct: bool | None
    reward: float
    outcome: Outcome
    detail: str = ""
    score: float | None = None  # the raw verifier score in [0, 1], None when not judged
    answer: str | None = None  # the extracted answer the verifier saw

    def to_dict(self) -> dict:
        d = asdict(self)
        d["outcome"] = self.outcome.value
        return d
