"""Task files: the pydantic TaskSpec, YAML loading with line-accurate errors, and lookup by name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import yaml_read
from .errors import ConfigError
from .names import CheckId
from .strict import Strict
from .task_training import DPOSpec, GFTSpec, GRPOSpec, LoraSpec, SFTSpec, TrainingSpec

__all__ = [
    "TaskSpec",
    "DataSpec",
    "FieldMap",
    "VerifierSpec",
    "ScenarioSpec",
    "GraderSpec",
    "SamplingSpec",
    "GateSpec",
    "LoraSpec",
    "GRPOSpec",
    "SFTSpec",
    "DPOSpec",
    "GFTSpec",
    "TrainingSpec",
    "load_task",
    "find_task",
    "task_slug",
    "DEFAULT_CHECKS",
    "DEFAULT_BLOCKING",
]

DEFAULT_CHECKS = (
    CheckId.VALIDATED_SET,
    CheckId.CONTAMINATION,
    CheckId.BASE_MODEL,
    CheckId.STABILITY,
    CheckId.GRPO_READINESS,
    CheckId.DIVERSITY,
)
DEFAULT_BLOCKING = (CheckId.VALIDATED_SET, CheckId.CONTAMINATION, CheckId.BASE_MODEL, CheckId.STABILITY)


class _Open(BaseModel):
    """An envelope whose extra keys belong to a plugin's own Params (validated in a second stage)."""

    model_config = ConfigDict(extra="allow")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FieldMap(Strict):
    """Which column of the data files holds each record field."""

    id: str | None = Field("id", description="Column with a unique row id; None numbers rows instead.")
    prompt: str = Field("prompt", description="Column with the prompt: a string or a chat message list.")
    reference: str | None = Field("reference", description="Column with the reference answer.")
    completion: str = Field("completion", description="Column with the demonstration's completion (train only).")
    scenario: str | None = Field("scenario", description="Column naming the example's scenario.")


class DataSpec(Strict):
    eval: Path | None = Field(
        None, description="Prompts the model is sampled on (JSONL, JSON, CSV, Parquet or a saved datasets dir)."
    )
    train: Path | None = Field(None, description="Demonstrations you intend to SFT on.")
    samples: Path | None = Field(None, description="Pre-made samples (JSONL) to replay instead of sampling a model.")
    fields: FieldMap = Field(default_factory=FieldMap)
    on_bad_rows: Literal["error", "skip"] = Field(
        "error", description="Stop at the first bad row, or skip bad rows and report counts."
    )


class VerifierSpec(_Open):
    """`kind` picks a verifier plugin; every other key is that verifier's own parameter."""

    kind: str = Field(
        "exact",
        description="exact, normalized, numeric, math, choice, vocabulary, regex, refusal, python, or a plugin id.",
    )
    extract: str | dict[str, str] | None = Field(
        None,
        description="How to pull the answer out of a completion: final (the last boxed answer, else the last "
        "answer line such as 'The answer is' or '####', else the whole text, or its last math "
        "when it is long), whole, last_line, boxed, {regex: PATTERN} (group 1 or the whole "
        "match) or {after: MARKER}. Unset: the verifier's own default, which is final for math "
        "and numeric and whole for every other verifier.",
    )
    timeout: float = Field(5.0, gt=0, description="Seconds allowed for one judgement (sympy/math-verify work).")


class ScenarioSpec(Strict):
    """Reward bands for one scenario, and optionally its own verifier."""

    verifier: VerifierSpec | None = Field(None, description="Overrides grader.verifier for this scenario.")
    correct: float = Field(1.0, description="Reward when the verifier says correct.")
    partial: float | None = Field(
        None, description="Reward for a partial score (0 < score < 1); None treats partial as wrong."
    )
    wrong: float = Field(0.0, description="Reward when the verifier says wrong.")
    keyword_bonus: float = Field(
        0.0, description="Added per keyword (from the `keywords` column) found in a correct answer."
    )
    max_keyword_bonus: float | None = Field(None, description="Cap on the total keyword bonus.")


class GraderSpec(Strict):
    verifier: VerifierSpec = Field(default_factory=VerifierSpec)
    scenarios: dict[str, ScenarioSpec] = Field(
        default_factory=dict, description="Per-scenario bands; unlisted scenarios use `default`."
    )
    default: ScenarioSpec = Field(
        default_factory=ScenarioSpec, description="Bands for examples with no listed scenario."
    )
    hedging_penalty: float = Field(
        0.0, description="Added when the completion hedges ('I think it might be...'); e.g. -0.2."
    )
    hedging_phrases: list[str] | None = Field(None, description="Replaces the built-in hedging phrases.")
    format_bonus: float = Field(
        0.0, description="Added when the answer was extracted and the completion is concise; e.g. 0.1."
    )
    concise_chars: int = Field(400, gt=0, description="A completion at most this long counts as concise.")
    vocabulary: list[str] | Path | None = Field(
        None,
        description="Known terms (list, or a file with one per line) for the vocabulary verifier and contamination grounding.",
    )
    workers: int = Field(0, ge=0, description="Processes for sympy/math-verify work; 0 picks min(4, cpu count).")


class SamplingSpec(_Open):
    """How the model is sampled: R runs x n samples per prompt. Engine-specific keys pass to the engine."""

    engine: str = Field("transformers", description="transformers, vllm, openai, replay, or a plugin id.")
    runs: int = Field(4, ge=1, description="Independent sampled runs (R); run r uses seeds seed + r*n ...")
    n: int = Field(4, ge=1, description="Samples per prompt per run.")
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(128, ge=1)
    stop: list[str] = Field(default_factory=list, description="Stop strings.")
    seed: int = Field(0, ge=0)
    system_prompt: str | None = Field(
        None, description="Prepended as a system message when the tokenizer has a chat template."
    )


class GateSpec(Strict):
    blocking: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKING),
        description="Checks that must pass for GRADUATED; the others are advisory.",
    )


class TaskSpec(Strict):
    """A phasecheck task file."""

    name: str = Field(description="Human name; `--task NAME` matches it case-insensitively.")
    description: str | None = None
    model: str | None = Field(None, description="Alias (smollm2-135m-instruct), local HF directory, or hub id.")
    data: DataSpec = Field(default_factory=DataSpec)
    grader: GraderSpec = Field(default_factory=GraderSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    checks: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {c: {} for c in DEFAULT_CHECKS},
        description="Check id -> that check's parameters. Blocking checks always run.",
    )
    gate: GateSpec = Field(default_factory=GateSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    # Set by load_task, not by the file.
    source: Path | None = Field(None, exclude=True, description="The task file (set on load).")

    @field_validator("checks", mode="before")
    @classmethod
    def _none_params(cls, v: Any) -> Any:
        # `checks: {contamination: }` in YAML gives None: treat as "defaults".
        if isinstance(v, dict):
            return {k: ({} if p is None else p) for k, p in v.items()}
        return v

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    @property
    def slug(self) -> str:
        return task_slug(self.name)

    def check_ids(self) -> list[str]:
        """Checks to run: those listed, then any blocking one not listed."""
        ids = list(self.checks)
        ids += [b for b in self.gate.blocking if b not in ids]
        return ids

    def normalised(self) -> dict:
        """The task as plain JSON data, for fingerprints (paths relative to the task file)."""
        return self.model_dump(mode="json", exclude={"source"})


def task_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "task"


# --- loading ----------------------------------------------------------------------------------


def _reject_near_misses(spec: TaskSpec, where: str, lines: dict[tuple, int]) -> None:
    """Open envelopes pass unknown keys to a plugin, so a typo there (`temprature`) would vanish silently."""
    import difflib

    envelopes = [(("sampling",), spec.sampling), (("grader", "verifier"), spec.grader.verifier)]
    envelopes += [
        (("grader", "scenarios", k, "verifier"), s.verifier)
        for k, s in spec.grader.scenarios.items()
        if s.verifier is not None
    ]
    for loc, model in envelopes:
        known = list(type(model).model_fields)
        for key in model.options:
            # 0.85 flags `temprature` but lets engine keys such as `top_k` (0.8 to `top_p`) through.
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
            if close:
                at = lines.get(loc + (key,))
                dotted = ".".join(loc + (key,))
                raise ConfigError(
                    f"{where}{f':{at}' if at else ''}: {dotted}: unknown field; "
                    f"did you mean {close[0]!r}? (`phasecheck schema` lists the fields)"
                )


def _reject_unknown_plugins(spec: TaskSpec, where: str, lines: dict[tuple, int]) -> None:
    """Every id that names a check, engine or verifier must be installed: a typo in a gate must not vanish."""
    from . import plugins

    named: list[tuple[tuple, str, str]] = [(("checks", cid), "checks", cid) for cid in spec.checks]
    named += [(("gate", "blocking", i), "checks", cid) for i, cid in enumerate(spec.gate.blocking)]
    named.append((("sampling", "engine"), "engines", spec.sampling.engine))
    named.append((("grader", "verifier", "kind"), "verifiers", spec.grader.verifier.kind))
    named += [
        (("grader", "scenarios", k, "verifier", "kind"), "verifiers", s.verifier.kind)
        for k, s in spec.grader.scenarios.items()
        if s.verifier is not None
    ]
    for loc, group, name in named:
        try:
            plugins.find(group, name)
        except ConfigError as exc:
            at = lines.get(loc)
            dotted = ".".join(str(p) for p in loc)
            raise ConfigError(f"{where}{f':{at}' if at else ''}: {dotted}: {exc}") from None


def load_task(path: str | Path) -> TaskSpec:
    """Read and validate a task file; data paths become absolute, relative to the file."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > yaml_read.MAX_TASK_BYTES:
            raise ConfigError(
                f"{path}: task file is {path.stat().st_size:,} bytes; a task file may be at most "
                f"{yaml_read.MAX_TASK_BYTES:,} (point data: at data files instead of inlining data)"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: task file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read task file ({exc.__class__.__name__}: {exc})") from None
    try:
        yaml_read.guard(text, str(path))
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: a task file must be a YAML mapping with at least `name:`")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            yaml_read.format_validation_error(exc, str(path), yaml_read.key_lines(node) if node else None)
        ) from None
    lines = yaml_read.key_lines(node) if node else {}
    _reject_near_misses(spec, str(path), lines)
    _reject_unknown_plugins(spec, str(path), lines)
    base = path.resolve().parent
    data = spec.data
    for role in ("eval", "train", "samples"):
        p = getattr(data, role)
        if p is not None and not p.is_absolute():
            setattr(data, role, base / p)
    vocab = spec.grader.vocabulary
    if isinstance(vocab, Path) and not vocab.is_absolute():
        spec.grader.vocabulary = base / vocab
    if spec.training.output_dir is not None and not spec.training.output_dir.is_absolute():
        spec.training.output_dir = base / spec.training.output_dir
    spec.source = path.resolve()
    return spec


def _candidates(cwd: Path) -> list[Path]:
    files = [cwd / "phasecheck.yaml"] if (cwd / "phasecheck.yaml").is_file() else []
    tasks = cwd / "tasks"
    if tasks.is_dir():
        files += sorted(tasks.glob("*.yaml")) + sorted(tasks.glob("*.yml"))
    return files


def find_task(name: str | None, cwd: Path | None = None) -> TaskSpec:
    """Resolve `--task NAME`: a path, or a name (case-insensitive) in ./phasecheck.yaml or ./tasks/*.yaml."""
    cwd = cwd or Path.cwd()
    if name and (Path(name).suffix in {".yaml", ".yml"} or Path(name).is_file()):
        return load_task(name)
    files = _candidates(cwd)
    if not files:
        given = f"--task {name!r}" if name else "no task given"
        raise ConfigError(
            f"{cwd}: {given}, and no ./phasecheck.yaml or ./tasks/*.yaml here to find it in "
            "(run from the project directory, or pass a task file path)"
        )
    if name is None:
        if len(files) == 1:
            return load_task(files[0])
        raise ConfigError(
            f"{cwd}: several task files found; pick one with --task NAME ({', '.join(f.name for f in files)})"
        )
    wanted = name.strip().lower()
    names = []
    for f in files:
        spec = load_task(f)
        names.append(spec.name)
        if spec.name.lower() == wanted or f.stem.lower() == wanted or spec.slug == task_slug(name):
            return spec
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known tasks: {', '.join(names)}"
    raise ConfigError(f"--task {name!r}: no task with that name in {cwd}{hint}")
