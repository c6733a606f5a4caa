"""Grading: answer extraction, verifier plugins, and reward bands turning a completion into a Grade.

math and numeric read the final answer (`extract: final`) unless the task sets `extract`.

Outcomes, in order of precedence (first that applies):
  error     the verifier could not judge for a reason that is not the model's fault (no or bad reference,
            verifier crash). correct=None, reward 0.0; the TRL reward function returns None.
  timeout   judging used more than `verifier.timeout` (CPU seconds of the worker for math; the worker was
            killed). correct=None, reward = the scenario's `wrong` band, so hostile output never pays; no bonus.
  too_long  the answer is longer than the verifier judges at a bounded cost, and no shorter final answer
            (boxed, answer line, last math span) was found in it. correct=None, reward = the `wrong` band.
  correct   score 1.0. reward = `correct` (+ keyword bonus per `keywords` entry found, capped).
  refused   not correct and the completion declines ("I don't know that tag") while the scenario's
            verifier is not `refusal`. With kind `refusal` a refusal is judged by the verifier itself:
            correct when it declines and names no vocabulary term, wrong otherwise (unknown_tag bands).
  hedged    not correct and a hedging phrase is present ("I think it might be...").
  unparsed  no answer could be extracted or parsed.                     } reward = `partial` for
  wrong     otherwise (a partial score is `wrong` with partial credit). } 0<score<1 when set, else `wrong`
Then, on top of any judged outcome: `hedging_penalty` when a hedge phrase is present (except in a
correct refusal, where uncertainty is the point), and `format_bonus` when an answer was extracted
and the completion is at most `concise_chars` long.
"""

from __future__ import annotations

from .base import Judgement, Verifier
from .extract import HEDGING_PHRASES, REFUSAL_PHRASES, completion_text, extract_answer
from .grader import Grader, as_reward_func, load_vocabulary
from .pool import TimeoutPool, shared_pool

__all__ = [
    "Grader",
    "as_reward_func",
    "extract_answer",
    "completion_text",
    "load_vocabulary",
    "HEDGING_PHRASES",
    "REFUSAL_PHRASES",
    "Judgement",
    "Verifier",
    "TimeoutPool",
    "shared_pool",
]
