"""The Grader: extraction -> verifier -> outcome and reward bands, batched and cached; and as_reward_func."""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import plugins
from ..errors import ConfigError, PhasecheckError, VerifierError
from ..records import Example, Grade, Outcome
from ..task import ScenarioSpec, TaskSpec, VerifierSpec
from .base import ERROR, TIMEOUT, TOO_LONG, UNPARSED, Judgement, Verifier, as_verifier
from .extract import HEDGING_PHRASES, completion_text, extract_answer, find_phrase
from .pool import TimeoutPool
from .refusal import is_refusal

__all__ = ["Grader", "as_reward_func", "RewardStats", "load_vocabulary"]

_log = logging.getLogger("phasecheck")

CACHE_SIZE = 200_000
MAX_ANSWER_CHARS = 2000  # Grade.answer is evidence for reports, not a copy of a 100k-char answer
_UNJUDGED = {TIMEOUT: Outcome.TIMEOUT, TOO_LONG: Outcome.TOO_LONG, ERROR: Outcome.ERROR}
# Keywords TRL's GRPOTrainer passes to reward functions that are not data columns (TRL 1.16,
# GRPOTrainer._calculate_rewards). `prompts` is read as the prompt when the mapped column is absent.
_TRL_INTERNAL = {"completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}


def load_vocabulary(vocab: list[str] | Path | str | None, base_dir: Path | None = None) -> list[str]:
    """Known terms from a list, or a file with one term per line (blank lines and # comments skipped)."""
    if vocab is None:
        return []
    if isinstance(vocab, (list, tuple)):
        return [str(t).strip() for t in vocab if str(t).strip()]
    path = Path(vocab)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"grader.vocabulary: {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"grader.vocabulary: {path}: cannot read ({exc.__class__.__name__})") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _keywords(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    return [str(k).strip() for k in value if str(k).strip()]


class Grader:
    """Grades completions against examples with the task's verifiers and per-scenario reward bands."""

    def __init__(self, task: TaskSpec, *, pool: TimeoutPool | None = None):
        self.task = task
        self.spec = task.grader
        self.vocabulary: list[str] = load_vocabulary(self.spec.vocabulary, task.base_dir)
        self.hedging_phrases = list(
            self.spec.hedging_phrases if self.spec.hedging_phrases is not None else HEDGING_PHRASES
        )
        self._own_pool = pool is None
        self.pool = pool if pool is not None else TimeoutPool(self.spec.workers)  # spawns nothing yet
        self._verifiers: dict[str | None, tuple[VerifierSpec, Verifier]] = {
            None: self._build(self.spec.verifier, "grader.verifier")
        }
        for name, sc in self.spec.scenarios.items():
            if sc.verifier is not None:
                self._verifiers[name] = self._build(sc.verifier, f"grader.scenarios.{name}.verifier")
        self._cache: OrderedDict[tuple, Grade] = OrderedDict()
        self._lock = threading.Lock()

    def _build(self, vspec: VerifierSpec, where: str) -> tuple[VerifierSpec, Verifier]:
        """The verifier, and its spec with `extract` resolved: a verifier's own default (math and numeric
        read the final answer of a long reasoning), else whole, applies where the task file sets none."""
        cls = plugins.load("verifiers", vspec.kind)
        if vspec.extract is None:
            vspec = vspec.model_copy(update={"extract": getattr(cls, "default_extract", None) or "whole"})
        try:
            extract_answer("", vspec.extract)
        except VerifierError as exc:
            raise ConfigError(f"{where}.{exc}") from None
        params = plugins.validate_params(cls, vspec.options, where)
        context = {
            "kind": vspec.kind,
            "timeout": vspec.timeout,
            "pool": self.pool,
            "workers": self.spec.workers,
            "base_dir": self.task.base_dir,
        }
        try:
            if isinstance(cls, type) and issubclass(cls, Verifier):
                return vspec, cls(params, vocabulary=self.vocabulary, **context)
            return vspec, as_verifier(cls(params, vocabulary=self.vocabulary), vspec.kind)
        except PhasecheckError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def _scenario(self, example: Example) -> tuple[ScenarioSpec, str | None]:
        sc = self.spec.scenarios.get(example.scenario) if example.scenario is not None else None
        if sc is None:
            return self.spec.default, None
        return sc, (example.scenario if example.scenario in self._verifiers else None)

    # --- grading --------------------------------------------------------------------------------

    def grade(self, completion: str, example: Example) -> Grade:
        """One completion's Grade."""
        return self.grade_many([(completion, example)])[0]

    def grade_many(self, pairs: Sequence[tuple[Any, Example]]) -> list[Grade]:
        """Grades in input order; repeated (completion, reference, scenario, columns) are judged once."""
        out: list[Grade | None] = [None] * len(pairs)
        pending: dict[tuple, list[int]] = {}
        texts = [completion_text(c) for c, _ in pairs]
        for i, (text, (_, ex)) in enumerate(zip(texts, pairs)):
            key = (text, repr(ex.reference), ex.scenario, repr(sorted(ex.columns.items())))
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None:
                out[i] = hit
            else:
                pending.setdefault(key, []).append(i)
        groups: dict[str | None, list[tuple]] = {}
        for key, idx in pending.items():
            groups.setdefault(self._scenario(pairs[idx[0]][1])[1], []).append(key)
        for vkey, keys in groups.items():
            vspec, verifier = self._verifiers[vkey]
            firsts = [pending[k][0] for k in keys]
            examples = [pairs[i][1] for i in firsts]
            answers = [extract_answer(texts[i], vspec.extract) for i in firsts]
            judgements = self._judge(verifier, vspec, answers, examples)
            for key, i, ex, ans, j in zip(keys, firsts, examples, answers, judgements):
                g = self._compose(texts[i], ans, j, ex, vspec)
                with self._lock:
                    self._cache[key] = g
                    if len(self._cache) > CACHE_SIZE:
                        self._cache.popitem(last=False)
                for k in pending[key]:
                    out[k] = g
        return out  # type: ignore[return-value]

    def _judge(
        self, verifier: Verifier, vspec: VerifierSpec, answers: list[str | None], examples: list[Example]
    ) -> list[Judgement]:
        columns: dict[str, list] = {
            "reference": [e.reference for e in examples],
            "scenario": [e.scenario for e in examples],
            "id": [e.id for e in examples],
            "prompt": [e.prompt for e in examples],
        }
        for name in sorted({k for e in examples for k in e.columns} - set(columns)):
            columns[name] = [e.columns.get(name) for e in examples]
        try:
            got = verifier.judge(answers, **columns)
        except PhasecheckError:
            raise
        except Exception as exc:  # noqa: BLE001 - a crashing verifier judges nothing; the run goes on
            return [Judgement.error(f"verifier {vspec.kind!r} raised {exc.__class__.__name__}: {exc}")] * len(answers)
        if len(got) != len(answers):
            raise VerifierError(f"verifier {vspec.kind!r} returned {len(got)} scores for {len(answers)} answers")
        return list(got)

    def _compose(self, text: str, answer: str | None, j: Judgement, ex: Example, vspec: VerifierSpec) -> Grade:
        grade = self._outcome(text, answer, j, ex, vspec)
        if grade.answer is not None and len(grade.answer) > MAX_ANSWER_CHARS:
            grade = replace(grade, answer=grade.answer[:MAX_ANSWER_CHARS] + "...")
        return grade

    def _outcome(self, text: str, answer: str | None, j: Judgement, ex: Example, vspec: VerifierSpec) -> Grade:
        bands, _ = self._scenario(ex)
        spec = self.spec
        score = None if j.score is None else min(1.0, max(0.0, float(j.score)))
        if score is None and j.why not in (UNPARSED,):
            outcome = _UNJUDGED.get(j.why, Outcome.ERROR)
            # A completion that cannot be judged in time (or at a bounded cost) earns nothing, or hostile
            # output would pay.
            reward = bands.wrong if outcome is not Outcome.ERROR else 0.0
            return Grade(None, reward, outcome, j.detail, None, answer)
        refusal_task = vspec.kind == "refusal"
        refused = None if refusal_task else is_refusal(text)
        hedge = find_phrase(text, self.hedging_phrases)
        details = [j.detail] if j.detail else []
        if score is not None and score >= 1.0:
            correct, outcome = True, Outcome.CORRECT
            reward = bands.correct + self._keyword_bonus(text, ex, bands, details)
        else:
            correct = False
            partial = score is not None and score > 0 and bands.partial is not None
            reward = bands.partial if partial else bands.wrong
            if refused:
                outcome = Outcome.REFUSED
                details.append(f"refused ({refused!r})")
            elif hedge:
                outcome = Outcome.HEDGED
            elif score is None:
                outcome = Outcome.UNPARSED
            else:
                outcome = Outcome.WRONG
            if partial:
                details.append(f"partial credit {score:g}")
        if hedge and not (refusal_task and correct):  # uncertainty is the point of a correct refusal
            reward += spec.hedging_penalty
            details.append(f"hedged ({hedge!r})")
        if answer is not None and len(text.strip()) <= spec.concise_chars:
            reward += spec.format_bonus
        return Grade(correct, round(reward, 10), outcome, "; ".join(details), score, answer)

    @staticmethod
    def _keyword_bonus(text: str, ex: Example, bands: ScenarioSpec, details: list[str]) -> float:
        if not bands.keyword_bonus:
            return 0.0
        found = [k for k in dict.fromkeys(_keywords(ex.columns.get("keywords"))) if find_phrase(text, [k])]
        bonus = bands.keyword_bonus * len(found)
        if bands.max_keyword_bonus is not None:
            bonus = min(bonus, bands.max_keyword_bonus)
        if found:
            details.append(f"keywords {', '.join(found)}")
        return bonus

    # --- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker processes this Grader started (if any)."""
        if self._own_pool:
            self.pool.close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RewardStats:
    """What a reward function has returned so far; None rewards are counted, never silent."""

    def __init__(self) -> None:
        self.calls = 0
        self.completions = 0
        self.none = 0
        self.outcomes: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "completions": self.completions,
            "none": self.none,
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def _needs_reference(grader: Grader) -> bool:
    return any(v.needs_reference for _, v in grader._verifiers.values())


def as_reward_func(task: TaskSpec, grader: Grader | None = None) -> Callable[..., list[float | None]]:
    """A TRL reward function `fn(completions, **columns) -> list[float | None]` (None: could not judge).

    Columns are read by the task's mapping only (`data.fields`), so an unrelated column that happens to be
    called `reference` never overrides it; TRL's own keywords are never read as columns. The first call
    raises when the verifier needs references and the mapped column is absent (else every reward is None)."""
    grader = grader or Grader(task)
    fields = task.data.fields
    needs_ref = _needs_reference(grader)
    stats = RewardStats()
    name = f"phasecheck_{task.slug.replace('-', '_')}"

    def reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        cols: dict[str, Sequence[Any]] = {}
        for key, values in kwargs.items():
            if key in _TRL_INTERNAL or not isinstance(values, (list, tuple)):
                continue
            if len(values) != n:
                raise VerifierError(
                    f"reward function: column {key!r} has {len(values)} values for {n} "
                    "completions; pass one value per completion (no broadcasting)"
                )
            cols[key] = values
        if stats.calls == 0 and needs_ref and fields.reference not in cols:
            given = ", ".join(sorted(cols)) or "(none)"
            mapping = (
                f"data.fields.reference maps the reference to {fields.reference!r}"
                if fields.reference
                else "data.fields.reference is null"
            )
            raise VerifierError(
                f"reward function {name}: the verifier needs a reference, and {mapping}, but "
                f"the dataset's columns are: {given}; rename the column or set "
                "data.fields.reference (every reward would be None)"
            )
        examples = _reward_examples(cols, fields, n)
        grades = grader.grade_many(list(zip(completions, examples)))
        out = [None if g.outcome is Outcome.ERROR else g.reward for g in grades]
        _count(stats, grades, out, name)
        return out

    reward.__name__ = name
    reward.__qualname__ = name
    reward.grader = grader  # type: ignore[attr-defined]
    reward.stats = stats  # type: ignore[attr-defined]
    return reward


def _reward_examples(cols: dict[str, Sequence[Any]], fields: Any, n: int) -> list[Example]:
    """One Example per completion, from the mapped columns; the other data columns ride along."""

    def column(mapped: str | None) -> Sequence[Any] | None:
        return cols.get(mapped) if mapped else None

    ids, refs, scen = column(fields.id), column(fields.reference), column(fields.scenario)
    prompts = column(fields.prompt) or cols.get("prompts")
    used = {fields.id, fields.reference, fields.scenario, fields.prompt, "prompts"}
    extra = [k for k in cols if k not in used]
    return [
        Example(
            id=str(ids[i]) if ids is not None else str(i),
            prompt=prompts[i] if prompts is not None else "",
            reference=refs[i] if refs is not None else None,
            scenario=scen[i] if scen is not None else None,
            columns={k: cols[k][i] for k in extra},
        )
        for i in range(n)
    ]


def _count(stats: RewardStats, grades: list[Grade], rewards: list[float | None], name: str) -> None:
    stats.calls += 1
    stats.completions += len(rewards)
    stats.outcomes.update(g.outcome.value for g in grades)
    nones = sum(r is None for r in rewards)
    if nones:
        stats.none += nones
        why = next(g.detail for g in grades if g.outcome is Outcome.ERROR)
        _log.warning(
            "%s: %d of %d rewards are None (could not judge: %s); %d None so far in %d completions",
            name,
            nones,
            len(rewards),
            why,
            stats.none,
            stats.completions,
        )
