"""plan -> validate the whole plan -> sample -> grade -> run checks -> verdict.

Evidence is computed lazily, once, and shared by every check; a check that raises becomes `error`."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from . import plugins
from .errors import ConfigError
from .jsonl import json_lines, write_jsonl
from .names import Artifact, Metric
from .records import UNJUDGED, Demonstration, Example, Grade, Sample, prompt_text
from .results import CheckResult, Status, Verdict
from .stages import stage
from .task import TaskSpec

__all__ = ["Unavailable", "GradedSample", "GradedDemo", "Evidence", "PlannedCheck", "CheckOptions",
           "apply_overrides", "plan_checks", "prepare", "run_check", "run_checks", "check_task", "resolve_after_grpo",
           "default_out_dir", "write_samples", "training_metrics", "grading_counts"]


class Unavailable(Exception):
    """Raised by Evidence when a check asks for something this run cannot provide; the check is skipped."""


@dataclass(frozen=True, slots=True)
class GradedSample:
    sample: Sample
    example: Example
    grade: Grade


@dataclass(frozen=True, slots=True)
class GradedDemo:
    demo: Demonstration
    grade: Grade


_NO_SAMPLES = ("the task has no model and no samples file "
               "(set `model:` or `data.samples:`, or pass --model / --samples)")


class Evidence:
    """What the checks look at. Pass records directly (tests, embedding) or let it load from the task."""

    def __init__(self, task: TaskSpec, *, examples: Sequence[Example] | None = None,
                 demonstrations: Sequence[Demonstration] | None = None, samples: Sequence[Sample] | None = None,
                 grader: Any = None, out_dir: Path | None = None, after_grpo: dict[str, Any] | None = None,
                 previous: Verdict | None = None, use_cache: bool = True,
                 progress: Callable[..., Any] | None = None) -> None:
        self.task = task
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.after_grpo = after_grpo           # {"model": identity, "step": int, "path": str} after GRPO
        self.previous = previous               # an earlier verdict (--compare)
        self.artifacts: dict[str, str] = {}    # name -> path relative to out_dir, filled by checks
        self.use_cache = use_cache
        self.progress = progress
        self.model: str | None = None          # what sampling resolved the model to
        self.engine: str | None = None
        self._examples = list(examples) if examples is not None else None
        self._demos = list(demonstrations) if demonstrations is not None else None
        self._samples = list(samples) if samples is not None else None
        self._grader = grader
        self._own_grader = grader is None
        self._graded_demos: list[GradedDemo] | None = None
        self._graded_samples: list[GradedSample] | None = None

    # --- records ------------------------------------------------------------------------------
    @property
    def examples(self) -> list[Example]:
        if self._examples is None:
            if self.task.data.eval is None:
                self._examples = []
            else:
                from .data import load_examples
                with stage("load eval data"):
                    self._examples = list(load_examples(self.task).records)
        return self._examples

    @property
    def demonstrations(self) -> list[Demonstration]:
        if self._demos is None:
            if self.task.data.train is None:
                self._demos = []
            else:
                from .data import load_demonstrations
                with stage("load train data"):
                    self._demos = list(load_demonstrations(self.task).records)
        return self._demos

    @property
    def has_samples(self) -> bool:
        if self._samples is not None:
            return True
        from .sampling import can_sample        # a samples file counts: it switches the engine to replay
        return can_sample(self.task)

    @property
    def samples(self) -> list[Sample]:
        if self._samples is None:
            if not self.has_samples:
                raise Unavailable(_NO_SAMPLES)
            if not self.examples:
                raise Unavailable("the task has no eval prompts (`data.eval:`) to sample the model on")
            from .sampling import sample_task
            with stage("sample"):
                result = sample_task(self.task, self.examples, use_cache=self.use_cache, progress=self.progress)
            self._samples = list(result.samples)
            model = getattr(result, "model", None)
            self.model = getattr(model, "name", None) or (str(model) if model is not None else None)
            self.engine = getattr(result, "engine", None)
        return self._samples

    # --- grading ------------------------------------------------------------------------------
    @property
    def grader(self) -> Any:
        if self._grader is None:
            from .grading import Grader
            with stage("set up the grader"):
                self._grader = Grader(self.task)
        return self._grader

    @property
    def vocabulary(self) -> list[str]:
        return list(getattr(self.grader, "vocabulary", []) or [])

    @property
    def graded_demonstrations(self) -> list[GradedDemo]:
        if self._graded_demos is None:
            demos = self.demonstrations
            with stage("grade demonstrations"):
                grades = self.grader.grade_many([(d.completion, d) for d in demos]) if demos else []
            self._graded_demos = [GradedDemo(d, g) for d, g in zip(demos, grades)]
        return self._graded_demos

    @property
    def graded_samples(self) -> list[GradedSample]:
        if self._graded_samples is None:
            samples = self.samples
            by_id = {e.id: e for e in self.examples}
            missing = sorted({s.example_id for s in samples} - set(by_id))
            if missing:
                from .errors import DataError
                raise DataError(f"{len(missing)} samples name example ids absent from the eval data "
                                f"(first: {missing[0]!r}); were they made for another data file?")
            pairs = [(s.completion, by_id[s.example_id]) for s in samples]
            with stage("grade samples"):
                grades = self.grader.grade_many(pairs) if pairs else []
            self._graded_samples = [GradedSample(s, by_id[s.example_id], g) for s, g in zip(samples, grades)]
        return self._graded_samples

    def close(self) -> None:
        if self._own_grader and self._grader is not None and hasattr(self._grader, "close"):
            self._grader.close()


# --- planning ----------------------------------------------------------------------------------

@dataclass
class PlannedCheck:
    id: str
    plugin: Any
    params: Any
    blocking: bool


def plan_checks(task: TaskSpec, only: Sequence[str] | None = None) -> list[PlannedCheck]:
    """Find, load and validate every check before anything runs, so a typo fails fast (exit 2)."""
    ids = task.check_ids()
    if only:
        for name in only:
            plugins.find("checks", name)                     # unknown id -> "did you mean"
        ids = [i for i in ids if i in only] + [i for i in only if i not in ids]
    for b in task.gate.blocking:
        plugins.find("checks", b)
    planned = []
    for cid in ids:
        plugin = plugins.load("checks", cid)
        where = f"{task.source}: checks.{cid}" if task.source else f"checks.{cid}"
        params = plugins.validate_params(plugin, task.checks.get(cid), where)
        planned.append(PlannedCheck(cid, plugin, params, cid in task.gate.blocking))
    return planned


def _reads_samples(planned: PlannedCheck) -> bool:
    """Third-party checks that do not say are assumed to read samples."""
    reads = getattr(planned.plugin, "reads_samples", None)
    return reads(planned.params) if callable(reads) else getattr(planned.plugin, "uses_samples", True)


def prepare(evidence: Evidence, planned: Sequence[PlannedCheck]) -> None:
    """Load, sample and grade up front, so bad input fails the run with its own exit code (2 for data or
    config, 3 for an engine) instead of surfacing as an error inside whichever check asked first."""
    evidence.examples
    evidence.demonstrations
    evidence.grader
    wants = evidence.after_grpo is not None or any(_reads_samples(p) for p in planned)
    if wants and evidence.has_samples and evidence.examples:
        evidence.graded_samples
    if evidence.demonstrations:
        evidence.graded_demonstrations


def run_check(planned: PlannedCheck, evidence: Evidence) -> CheckResult:
    """Run one check; Unavailable -> skip with its reason, any other exception -> error with repr(exc)."""
    plugin = planned.plugin
    question = getattr(plugin, "question", planned.id)
    try:
        runner = plugin() if isinstance(plugin, type) else plugin
        with stage(f"check {planned.id}"):
            result = runner.run(evidence, planned.params)
        if not isinstance(result, CheckResult):
            raise TypeError(f"run() returned {type(result).__name__}, not CheckResult")
    except Unavailable as exc:
        result = CheckResult(id=planned.id, question=question, status=Status.SKIP, headline=f"skipped: {exc}")
    except Exception as exc:  # noqa: BLE001 - a crashing check is a result (`error`), never a traceback
        result = CheckResult(id=planned.id, question=question, status=Status.ERROR,
                             headline=f"error in check {planned.id}: {exc!r}"[:300],
                             metrics={"error": repr(exc)})
    return result.model_copy(update={"blocking": planned.blocking, "id": planned.id})


def run_checks(planned: Sequence[PlannedCheck], evidence: Evidence,
               on_result: Callable[[CheckResult, float], None] | None = None) -> list[CheckResult]:
    results = []
    for p in planned:
        t0 = time.perf_counter()
        r = run_check(p, evidence)
        if on_result:
            on_result(r, time.perf_counter() - t0)
        results.append(r)
    return results


# --- the whole command -------------------------------------------------------------------------

@dataclass
class CheckOptions:
    only: list[str] | None = None
    after_grpo: bool = False
    fail_on_warn: bool = False
    use_cache: bool = True
    compare: Path | None = None
    out_dir: Path | None = None
    command: list[str] = field(default_factory=list)
    progress: Callable[..., Any] | None = None


def apply_overrides(task: TaskSpec, *, model: str | None = None, engine: str | None = None,
                    runs: int | None = None, n: int | None = None, seed: int | None = None,
                    samples: str | Path | None = None) -> TaskSpec:
    """A copy of the task with command-line overrides applied (the task file wins nowhere)."""
    task = task.model_copy(deep=True)
    if model is not None:
        task.model = model
    if samples is not None:
        path = Path(samples)
        if not path.is_file():
            raise ConfigError(f"--samples {samples}: file not found")
        task.data.samples = path.resolve()
        task.sampling.engine = "replay"
    if engine is not None:
        plugins.find("engines", engine)
        task.sampling.engine = engine
    for name, value in (("runs", runs), ("n", n), ("seed", seed)):
        if value is not None:
            setattr(task.sampling, name, value)
    return task


def resolve_after_grpo(task: TaskSpec, model: str | None) -> tuple[TaskSpec, dict[str, Any]]:
    """Point the task at the newest GRPO checkpoint (or --model PATH) and say where it came from."""
    from .state import newest_run
    if model is None:
        run = newest_run(task, "grpo")
        if run is None:
            raise ConfigError(f"{task.source or task.name}: --after-grpo found no GRPO checkpoint recorded "
                              "for this task; run `phasecheck train grpo` first or pass --model PATH")
        model, step = run["path"], int(run.get("step", 0))
    else:
        step = 0
    task = task.model_copy(deep=True)
    task.model = model
    return task, {"path": str(model), "step": step}


def default_out_dir(task: TaskSpec) -> Path:
    return Path("reports") / task.slug


def check_task(task: TaskSpec, options: CheckOptions, *, model_override: str | None = None,
               on_result: Callable[[CheckResult, float], None] | None = None) -> tuple[Verdict, Path]:
    """Run every planned check on `task`, save verdict.json (+ samples/validated) and record it.

    Returns the verdict and the path of verdict.json."""
    from . import state
    from .sampling import model_identity_for
    from .verdict import build_verdict, fingerprint, load_verdict, save_verdict

    after = None
    if options.after_grpo:
        task, after = resolve_after_grpo(task, model_override)
    with stage("plan checks"):
        planned = plan_checks(task, options.only)
    previous = load_verdict(options.compare) if options.compare else None
    out_dir = Path(options.out_dir) if options.out_dir else default_out_dir(task)
    evidence = Evidence(task, out_dir=out_dir, after_grpo=after, previous=previous,
                        use_cache=options.use_cache, progress=options.progress)
    staging = _Staging(out_dir)
    try:
        try:
            if after is not None:
                after["model"] = model_identity_for(task)
            prepare(evidence, planned)
            evidence.out_dir = staging.dir         # checks that write (validated_set) write into the staging dir
            results = run_checks(planned, evidence, on_result)
            with stage("write evidence"):
                _write_evidence(evidence, results, staging.dir)
        finally:
            evidence.close()
        with stage("verdict"):
            fp = fingerprint(task, model_identity=model_identity_for(task))
            verdict = build_verdict(task, results, fp, fail_on_warn=options.fail_on_warn, command=options.command,
                                    artifacts=evidence.artifacts, model=evidence.model or task.model,
                                    grading=grading_counts(evidence))
            if previous is not None:
                verdict = _with_compare(verdict, previous, options.compare)
            save_verdict(verdict, staging.dir / "verdict.json")
            path = staging.publish()
    except BaseException:
        staging.discard()
        raise
    state.record_verdict(task, path, created_at=verdict.created_at, status=verdict.status.value,
                         digest=verdict.fingerprint.digest)
    return verdict, path


class _Staging:
    """This run's files are written into a hidden directory inside out_dir and moved in together, verdict.json
    last, so a run that fails leaves out_dir as it was: no new samples beside an old verdict, no half-written file."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._created = not out_dir.exists()
        self._dir: Path | None = None

    @property
    def dir(self) -> Path:
        if self._dir is None:
            import tempfile
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.out_dir))
        return self._dir

    def publish(self) -> Path:
        import os
        for name in sorted((p.name for p in self.dir.iterdir()), key=lambda n: (n == "verdict.json", n)):
            os.replace(self.dir / name, self.out_dir / name)
        self.dir.rmdir()
        return self.out_dir / "verdict.json"

    def discard(self) -> None:
        import shutil
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        if self._created and self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()


def _write_evidence(evidence: Evidence, results: list[CheckResult], out_dir: Path) -> None:
    """samples.jsonl and demonstrations.jsonl beside the verdict, named in its artifacts; after GRPO, the
    run's metrics up to the checkpoint judged, so the report draws its curves from the out dir alone."""
    if evidence.after_grpo is not None:
        rows = training_metrics(Path(evidence.after_grpo["path"]), int(evidence.after_grpo.get("step") or 0))
        if rows:
            write_jsonl(out_dir / "training_metrics.jsonl", rows)
            evidence.artifacts[Artifact.TRAINING_METRICS] = "training_metrics.jsonl"
    if evidence._samples is not None and evidence._graded_samples is not None:
        write_samples(evidence, out_dir / "samples.jsonl")
        evidence.artifacts[Artifact.SAMPLES] = "samples.jsonl"
    if evidence._graded_demos:
        named = {i for r in results for f in r.findings for i in f.example_ids}
        if write_demonstrations(evidence, out_dir / "demonstrations.jsonl", named):
            evidence.artifacts[Artifact.DEMONSTRATIONS] = "demonstrations.jsonl"


def grading_counts(evidence: Evidence) -> dict[str, dict[str, int]]:
    """Per graded set: grades made and how many could not be judged (timeout, too_long, error)."""
    out = {}
    for name, graded in (("samples", evidence._graded_samples), ("demonstrations", evidence._graded_demos)):
        if graded:
            seen = Counter(g.grade.outcome for g in graded)
            out[name] = {"graded": len(graded), **{k.value: seen[k] for k in UNJUDGED}}
    return out


def _with_compare(verdict: Verdict, previous: Verdict, path: Path | None) -> Verdict:
    from .reports.common import compare_verdicts
    diff = compare_verdicts(previous, verdict, old_path=str(path) if path else None)
    stab = next((c for c in verdict.checks if c.id == "stability"), None)
    if stab is not None:
        diff["regressed"] = list(stab.metrics.get("regressed", []))
    return verdict.model_copy(update={"compare": diff})


def training_metrics(checkpoint: Path, step: int = 0) -> list[dict[str, Any]]:
    """The metrics.jsonl rows of the run that wrote `checkpoint` (it sits in the run's directory), up to
    `step` when given; a resumed run's repeated steps keep their last row."""
    path = checkpoint.parent / "metrics.jsonl"
    if not path.is_file():
        return []
    rows: dict[Any, dict[str, Any]] = {}
    for _, row in json_lines(path, "training metrics"):
        at = row.get(Metric.STEP) if isinstance(row, dict) else None
        if isinstance(at, (int, float)) and (not step or at <= step):
            rows[at] = row
    return [rows[k] for k in sorted(rows)]


def write_samples(evidence: Evidence, path: Path) -> Path:
    """samples.jsonl: one line per graded sample with its prompt, reference, scenario and grade."""
    rows = []
    for g in evidence.graded_samples:
        row = g.sample.to_dict()
        row.update(prompt=prompt_text(g.example.prompt), reference=g.example.reference,
                   scenario=g.example.scenario, correct=g.grade.correct, reward=g.grade.reward,
                   outcome=g.grade.outcome.value, detail=g.grade.detail)
        rows.append(row)
    return write_jsonl(path, rows)


def write_demonstrations(evidence: Evidence, path: Path, named: set[str]) -> int:
    """demonstrations.jsonl: the demonstrations a reader drills into, those that failed the verifier or
    that a finding names, with their grade; the passing rest is in validated.jsonl. Returns the count."""
    rows = []
    for g in evidence.graded_demonstrations:
        d = g.demo
        if g.grade.correct is True and d.id not in named:
            continue
        rows.append({"id": d.id, "row": d.row, "source": d.source, "prompt": prompt_text(d.prompt),
                     "completion": d.completion, "reference": d.reference, "scenario": d.scenario,
                     "correct": g.grade.correct, "outcome": g.grade.outcome.value, "detail": g.grade.detail})
    if rows:
        write_jsonl(path, rows)
    return len(rows)
