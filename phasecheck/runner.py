"""The check runner, in stages: load -> sample -> grade (evidence.py) -> measure -> judge (each check)
-> verdict. Checks see one frozen view of the evidence; a check that raises becomes `error`, one whose
evidence this run lacks is skipped. The run's files are staged and published together."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import plugins
from .checks.base import Output, Unavailable
from .errors import ConfigError
from .evidence import Evidence, EvidenceView
from .jsonl import step_rows, write_jsonl
from .names import Artifact, CheckId, CheckMetric
from .paths import default_out_dir
from .records import prompt_text
from .results import CheckResult, Status, Verdict
from .stages import stage
from .task import TaskSpec

__all__ = [
    "PlannedCheck",
    "CheckOptions",
    "apply_overrides",
    "plan_checks",
    "reads_samples",
    "run_check",
    "run_checks",
    "check_task",
    "resolve_after_grpo",
    "write_samples",
    "training_metrics",
]


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
            plugins.find("checks", name)  # unknown id -> "did you mean"
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


def reads_samples(planned: Sequence[PlannedCheck]) -> bool:
    """Whether any planned check, with its params, reads model samples (a data-only run never loads a model)."""
    return any(p.plugin.reads_samples(p.params) for p in planned)


def run_check(planned: PlannedCheck, view: EvidenceView) -> tuple[CheckResult, list[Output]]:
    """Measure, then judge, one check: Unavailable -> skip with its reason, any other exception -> error
    with repr(exc). Returns the result and the files the check asks to write."""
    plugin = planned.plugin
    outputs: list[Output] = []
    try:
        check = plugin() if isinstance(plugin, type) else plugin
        with stage(f"check {planned.id}"):
            measured = check.measure(view, planned.params)
            result = check.judge(measured, planned.params)
        if not isinstance(result, CheckResult):
            raise TypeError(f"judge() returned {type(result).__name__}, not CheckResult")
        outputs = list(measured.outputs)
    except Unavailable as exc:
        result = CheckResult(id=planned.id, question=plugin.question, status=Status.SKIP, headline=f"skipped: {exc}")
    except Exception as exc:  # noqa: BLE001 - a crashing check is a result (`error`), never a traceback
        result = CheckResult(
            id=planned.id,
            question=plugin.question,
            status=Status.ERROR,
            headline=f"error in check {planned.id}: {exc!r}"[:300],
            metrics={"error": repr(exc)},
        )
    return result.model_copy(update={"blocking": planned.blocking, "id": planned.id}), outputs


def run_checks(
    planned: Sequence[PlannedCheck], view: EvidenceView, on_result: Callable[[CheckResult, float], None] | None = None
) -> tuple[list[CheckResult], list[Output]]:
    results, outputs = [], []
    for p in planned:
        t0 = time.perf_counter()
        r, out = run_check(p, view)
        if on_result:
            on_result(r, time.perf_counter() - t0)
        results.append(r)
        outputs.extend(out)
    return results, outputs


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


def apply_overrides(
    task: TaskSpec,
    *,
    model: str | None = None,
    engine: str | None = None,
    runs: int | None = None,
    n: int | None = None,
    seed: int | None = None,
    samples: str | Path | None = None,
) -> TaskSpec:
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
            raise ConfigError(
                f"{task.source or task.name}: --after-grpo found no GRPO checkpoint recorded "
                "for this task; run `phasecheck train grpo` first or pass --model PATH"
            )
        model, step = run["path"], int(run.get("step", 0))
    else:
        step = 0
    task = task.model_copy(deep=True)
    task.model = model
    return task, {"path": str(model), "step": step}


def check_task(
    task: TaskSpec,
    options: CheckOptions,
    *,
    model_override: str | None = None,
    on_result: Callable[[CheckResult, float], None] | None = None,
) -> tuple[Verdict, Path]:
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
    out_dir = Path(options.out_dir) if options.out_dir else default_out_dir(task, "check")
    staging = _Staging(out_dir)
    try:
        if after is not None:
            after["model"] = model_identity_for(task)
        with Evidence(
            task, after_grpo=after, previous=previous, use_cache=options.use_cache, progress=options.progress
        ) as evidence:
            view = evidence.view(reads_samples(planned))  # load -> sample -> grade
            model = evidence.model
        results, outputs = run_checks(planned, view, on_result)  # measure -> judge
        with stage("write evidence"):
            artifacts = _write_evidence(view, results, outputs, staging.dir)
        with stage("verdict"):
            fp = fingerprint(task, model_identity=model_identity_for(task))
            verdict = build_verdict(
                task,
                results,
                fp,
                fail_on_warn=options.fail_on_warn,
                command=options.command,
                artifacts=artifacts,
                model=model or task.model,
                grading=view.grading_counts(),
            )
            if previous is not None:
                verdict = _with_compare(verdict, previous, options.compare)
            save_verdict(verdict, staging.dir / "verdict.json")
            path = staging.publish()
    except BaseException:
        staging.discard()
        raise
    state.record_verdict(
        task, path, created_at=verdict.created_at, status=verdict.status.value, digest=verdict.fingerprint.digest
    )
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


def _write_evidence(
    view: EvidenceView, results: list[CheckResult], outputs: list[Output], out_dir: Path
) -> dict[str, str]:
    """The checks' own files, then samples.jsonl and demonstrations.jsonl beside the verdict; after GRPO,
    the run's metrics up to the checkpoint judged, so the report draws its curves from the out dir alone.
    Returns the verdict's artifacts: name -> path relative to out_dir."""
    artifacts: dict[str, str] = {}
    for out in outputs:
        write_jsonl(out_dir / out.filename, out.rows)
        artifacts[out.artifact] = out.filename
    if view.after_grpo is not None:
        rows = training_metrics(Path(view.after_grpo["path"]), int(view.after_grpo.get("step") or 0))
        if rows:
            write_jsonl(out_dir / "training_metrics.jsonl", rows)
            artifacts[Artifact.TRAINING_METRICS] = "training_metrics.jsonl"
    if view.has_graded_samples:
        write_samples(view, out_dir / "samples.jsonl")
        artifacts[Artifact.SAMPLES] = "samples.jsonl"
        write_jsonl(out_dir / "prompts.jsonl", prompt_rows(view))
        artifacts[Artifact.PROMPTS] = "prompts.jsonl"
    if view.graded_demonstrations:
        named = {i for r in results for f in r.findings for i in f.example_ids}
        if write_demonstrations(view, out_dir / "demonstrations.jsonl", named):
            artifacts[Artifact.DEMONSTRATIONS] = "demonstrations.jsonl"
    return artifacts


def _with_compare(verdict: Verdict, previous: Verdict, path: Path | None) -> Verdict:
    from .reports.common import compare_verdicts

    diff = compare_verdicts(previous, verdict, old_path=str(path) if path else None)
    stab = next((c for c in verdict.checks if c.id == CheckId.STABILITY), None)
    if stab is not None:
        diff["regressed"] = list(stab.metrics.get(CheckMetric.REGRESSED, []))
    return verdict.model_copy(update={"compare": diff})


def training_metrics(checkpoint: Path, step: int = 0) -> list[dict[str, Any]]:
    """The metrics.jsonl rows of the run that wrote `checkpoint` (it sits in the run's directory), up to
    `step` when given."""
    path = checkpoint.parent / "metrics.jsonl"
    return step_rows(path, step) if path.is_file() else []


def prompt_rows(view: EvidenceView) -> list[dict[str, Any]]:
    """The per-prompt table at the group size `train grpo` will use (prompt_table.py)."""
    from .prompt_table import prompt_table
    from .training.grpo_settings import group_size_for

    return prompt_table(view.graded_samples, group_size_for(view.task)[0])


def write_samples(view: EvidenceView, path: Path) -> Path:
    """samples.jsonl: one line per graded sample with its prompt, reference, scenario and grade."""
    rows = []
    for g in view.graded_samples:
        row = g.sample.to_dict()
        row.update(
            prompt=prompt_text(g.example.prompt),
            reference=g.example.reference,
            scenario=g.example.scenario,
            correct=g.grade.correct,
            reward=g.grade.reward,
            outcome=g.grade.outcome.value,
            detail=g.grade.detail,
        )
        rows.append(row)
    return write_jsonl(path, rows)


def write_demonstrations(view: EvidenceView, path: Path, named: set[str]) -> int:
    """demonstrations.jsonl: the demonstrations a reader drills into, those that failed the verifier or
    that a finding names, with their grade; the passing rest is in validated.jsonl. Returns the count."""
    rows = []
    for g in view.graded_demonstrations:
        d = g.demo
        if g.grade.correct is True and d.id not in named:
            continue
        rows.append(
            {
                "id": d.id,
                "row": d.row,
                "source": d.source,
                "prompt": prompt_text(d.prompt),
                "completion": d.completion,
                "reference": d.reference,
                "scenario": d.scenario,
                "correct": g.grade.correct,
                "outcome": g.grade.outcome.value,
                "detail": g.grade.detail,
            }
        )
    if rows:
        write_jsonl(path, rows)
    return len(rows)
