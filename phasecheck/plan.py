"""From verdict to training plan: the prompts a GRPO run can learn from, in the eval file's own format, the
share of zero-variance groups before and after filtering, and settings for TRL, verl, OpenRLHF and prime-rl.

Oversampling (`oversample=K`, learnability-based sampling): prompt i with pass rate p_i is written
1 + round(K * 4 p_i (1 - p_i)) times, so its extra copies follow p(1-p) (K extra at p = 0.5, none at 0 or 1).
p(1-p) is the variance of a prompt's 0/1 reward: the prompts whose groups most often disagree get drawn most.
It is symmetric, so it favours p near 0.5, not hard prompts as such."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .data_formats import raw_rows, show_path
from .errors import ConfigError, DataError
from .jsonl import json_lines
from .names import Artifact
from .plan_exports import export_files, framework_notes
from .prompt_table import CLASSES, disjoint_groups, read_prompt_table, zero_variance_interval
from .results import load_verdict
from .task import TaskSpec

__all__ = ["PlanOptions", "Plan", "make_plan", "copies_for", "zero_variance_figure", "generation_batches"]

PLAN_FILE = "plan.json"
DATASET_STEM = "grpo_prompts"
OVERSAMPLING_RULE = "copies = 1 + round(K * 4 * p * (1 - p)), p the prompt's pass rate"
_NEXT = "run `phasecheck check` first"


@dataclass(frozen=True)
class PlanOptions:
    """Which prompts to keep (None: the exclusive default 0 < p, p < 1) and how many extra copies at p = 0.5."""

    min_pass: float | None = None
    max_pass: float | None = None
    oversample: int = 0

    def keeps(self, p: float) -> bool:
        low = p > 0 if self.min_pass is None else p >= self.min_pass
        return low and (p < 1 if self.max_pass is None else p <= self.max_pass)

    def rule(self) -> str:
        low = "0 < p" if self.min_pass is None else f"{self.min_pass:g} <= p"
        return f"{low} {'< 1' if self.max_pass is None else f'<= {self.max_pass:g}'}, p = pass rate"


@dataclass
class Plan:
    """What `make_plan` wrote: the out dir, the files by role, and plan.json's content."""

    out_dir: Path
    files: dict[str, str]
    summary: dict[str, Any] = field(default_factory=dict)


def copies_for(p: float, k: int) -> int:
    """How many times a prompt with pass rate p is written under oversampling K (OVERSAMPLING_RULE)."""
    return 1 + round(k * 4 * p * (1 - p))


def zero_variance_figure(rows: Sequence[dict], confidence: float = 0.95) -> dict[str, Any]:
    """The expected share of zero-variance groups over these prompts (each prompt one cluster), with its
    interval (`stats.equal_group_mean`) and the disjoint groups of G the samples could form."""
    ci = zero_variance_interval(rows, confidence)
    return {
        "share": ci.estimate,
        "interval": [ci.low, ci.high],
        "confidence": confidence,
        "prompts": ci.prompts,
        "disjoint_groups": disjoint_groups(rows),
        "upper_bound": not all(r["zero_variance_exact"] for r in rows),
        "method": ci.method,
    }


def generation_batches(zero: dict[str, Any]) -> dict[str, Any]:
    """Generation batches per training batch under dynamic sampling: 1 / (1 - z), with z's interval mapped
    through it (a bound None where z may be 1: a batch might never fill; no interval where z has none)."""

    def inv(z: float | None) -> float | None:
        return None if z is None or z >= 1 else 1 / (1 - z)

    interval = zero.get("interval")
    return {"expected": inv(zero["share"]), "interval": interval and [inv(interval[0]), inv(interval[1])]}


def make_plan(
    task: TaskSpec, *, verdict: str | Path | None = None, out_dir: str | Path | None = None, options=PlanOptions()
) -> Plan:
    """Read the verdict's prompts.jsonl, select, and write the dataset, the exports and plan.json into out_dir
    (default <verdict dir>/plan/), all or nothing."""
    if options.min_pass is not None and options.max_pass is not None and options.min_pass > options.max_pass:
        raise ConfigError(
            f"--min-pass {options.min_pass:g} is above --max-pass {options.max_pass:g}: no pass rate can be in "
            "between; set --min-pass at or below --max-pass"
        )
    verdict_path = _verdict_path(task, verdict)
    rows, samples = _read_verdict(task, verdict_path)
    kept = [r for r in rows if options.keeps(float(r["pass_rate"]))]
    if not kept:
        raise ConfigError(f"no prompt has a pass rate with {options.rule()} ({_counts_text(rows)}); {_EMPTY_HINT}")
    copies = {r["id"]: copies_for(float(r["pass_rate"]), options.oversample) for r in kept}
    out = Path(out_dir) if out_dir else verdict_path.parent / "plan"
    name, data, dataset_note = _dataset(task, kept, copies, out)
    summary = _summary(task, verdict_path, rows, kept, copies, options)
    summary["dataset"] = {"file": name, "rows": sum(copies.values()), "note": dataset_note}
    ctx = {
        "task": task,
        "dataset": (out / name).resolve(),
        "group_size": int(rows[0]["group_size"]),
        "reward_range": _reward_range(samples),
        "zero_after": summary["zero_variance"]["after_filtering"],
    }
    exports = export_files(ctx)
    summary["frameworks"] = framework_notes(ctx, exports)
    files = {name: data, **{f: text.encode() for f, text in exports.items()}}
    files[PLAN_FILE] = (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()
    _publish(out, files)
    return Plan(out, {"dataset": name, "plan": PLAN_FILE, **{k: k for k in exports}}, summary)


_EMPTY_HINT = (
    "GRPO has no learning signal on them: warm-start first, or widen the band with --min-pass 0 / --max-pass 1"
)


def _counts_text(rows: Sequence[dict]) -> str:
    counts = Counter(r["class"] for r in rows)
    return ", ".join(f"{counts.get(c, 0)} {c.replace('_', ' ')}" for c in CLASSES)


def _verdict_path(task: TaskSpec, verdict: str | Path | None) -> Path:
    if verdict is not None:
        return Path(verdict)
    from .state import newest_verdict, state_dir

    entry = newest_verdict(task)
    if entry is None:
        raise DataError(
            f"{show_path(state_dir(task) / 'verdicts.jsonl')}: no verdict recorded for {task.name}; {_NEXT}"
        )
    return Path(entry["path"])


def _read_verdict(task: TaskSpec, path: Path) -> tuple[list[dict], Path | None]:
    """The prompts table beside the verdict (and samples.jsonl, when listed), after checking the eval file is
    the one the verdict judged."""
    verdict = load_verdict(path)
    rows = read_prompt_table(verdict, path)
    if task.data.eval is None:
        raise ConfigError(f"{task.source or task.name}: data.eval is not set; the plan filters the eval file")
    from .data import file_hash

    judged = verdict.fingerprint.data.get("eval")
    if judged and judged != file_hash(Path(task.data.eval)):
        raise DataError(
            f"{show_path(Path(task.data.eval))}: changed since {show_path(path)} was checked; "
            "its pass rates may not match the rows; run `phasecheck check` again"
        )
    samples = path.parent / verdict.artifacts[Artifact.SAMPLES] if Artifact.SAMPLES in verdict.artifacts else None
    return rows, samples if samples is not None and samples.is_file() else None


def _reward_range(samples: Path | None) -> tuple[float, float, str]:
    """The lowest and highest reward the verdict's samples earned (the ends a group can sit at)."""
    if samples is None:
        return 0.0, 1.0, "no samples.jsonl beside the verdict: assumed rewards in [0, 1]"
    rewards = [float(r["reward"]) for _, r in json_lines(samples, "samples file") if r.get("reward") is not None]
    if not rewards:
        return 0.0, 1.0, "samples.jsonl has no rewards: assumed rewards in [0, 1]"
    return min(rewards), max(rewards), f"lowest and highest reward among {len(rewards)} samples of the verdict"


def _summary(task, verdict_path: Path, rows, kept, copies, options: PlanOptions) -> dict[str, Any]:
    counts = Counter(r["class"] for r in rows)
    before, after = zero_variance_figure(rows), zero_variance_figure(kept)
    zero = {"before_filtering": before, "after_filtering": after}
    trained_on = after
    if options.oversample:
        written = sum(copies[r["id"]] * r["zero_variance"] for r in kept) / sum(copies.values())
        trained_on = {**after, "share": written, "interval": None}
        zero["as_written"] = {
            "share": written,
            "interval": None,
            "note": "weighted by copies; no interval (the cluster interval weighs prompts equally)",
        }
    bound = " (upper bounds: some prompts had fewer samples than G)" if before["upper_bound"] else ""
    return {
        "task": task.name,
        "verdict": str(verdict_path.resolve()),
        "selection": {"rule": options.rule(), "min_pass": options.min_pass, "max_pass": options.max_pass},
        "classes": {c: counts.get(c, 0) for c in CLASSES},
        "prompts": len(rows),
        "kept": len(kept),
        "kept_by_class": dict(Counter(r["class"] for r in kept)),
        "group_size": int(rows[0]["group_size"]),
        "oversampling": {"k": options.oversample, "rule": OVERSAMPLING_RULE, "rows": sum(copies.values())},
        "zero_variance": zero,
        "dynamic_sampling": {
            "before_filtering": generation_batches(before),
            "trained_on": generation_batches(trained_on),
            "rule": "generation batches to fill one training batch = 1 / (1 - z), z the expected zero-variance "
            "share of the set trained on (gen_batch_size = train_batch_size)" + bound,
        },
        "upper_bounds": before["upper_bound"],
        "rests_on": _RESTS_ON + ([_UPPER] if before["upper_bound"] else []),
    }


_RESTS_ON = [
    "each prompt's zero_variance in prompts.jsonl: the unbiased chance that G of its sampled rewards are all "
    "equal, from the verdict's R x n samples at the checked model and temperature",
    "prompts as clusters (stats.equal_group_mean): effective size from the spread of the prompts' values, "
    "the disjoint groups of G when they are all equal",
    "after filtering is measured on the samples that chose the prompts, so it is optimistic: a prompt kept for "
    "one success in 8 may truly be solved far less often (the winner's curse)",
    "the model as checked: as GRPO raises pass rates, more groups become all-correct and the share grows",
]
_UPPER = (
    "some prompts had fewer samples than G: their zero-variance chance, and every figure built on it, is an upper bound"
)


def _ids(path: Path, task: TaskSpec) -> list[tuple[str | None, Any]]:
    """(id, raw row) per row of the eval file, ids as data.py gives them (`row-<n>` without an id column);
    a row data.py would reject gets None."""
    id_col = task.data.fields.id
    out = []
    for n, _, value, error in raw_rows(path, show_path(path), {}):
        if error is not None or not isinstance(value, dict):
            out.append((None, value))
        elif id_col is not None and id_col in value and value[id_col] is not None:
            out.append((str(value[id_col]), value))
        else:
            out.append((f"row-{n}", value))
    return out


def _dataset(task: TaskSpec, kept, copies: dict[str, int], out: Path) -> tuple[str, bytes, str]:
    """The kept eval rows, each written copies[id] times, every column kept plus pass_rate, in the eval
    file's format (a saved datasets directory becomes Parquet)."""
    path = Path(task.data.eval)
    rate = {r["id"]: float(r["pass_rate"]) for r in kept}
    pairs = _ids(path, task)
    picked = [i for i, (rid, _) in enumerate(pairs) if rid in rate for _ in range(copies[rid])]
    missing = set(rate) - {pairs[i][0] for i in picked}
    if missing:
        raise DataError(
            f"{show_path(path)}: {len(missing)} prompts of the verdict are not in the eval file "
            f"(e.g. {sorted(missing)[0]!r}); run `phasecheck check` again"
        )
    rates = [rate[pairs[i][0]] for i in picked]
    suffix = "" if path.is_dir() else path.suffix.lower()
    note = "pass_rate added" + ("; replaced the file's own pass_rate column" if _has_pass_rate(pairs) else "")
    if suffix in (".jsonl", ".ndjson", ".json"):
        rows = [{**pairs[i][1], "pass_rate": p} for i, p in zip(picked, rates)]
        if suffix == ".json":
            return DATASET_STEM + ".json", json.dumps(rows, ensure_ascii=False, indent=1).encode(), note
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return DATASET_STEM + suffix, text.encode(), note
    if suffix in (".csv", ".tsv"):
        return DATASET_STEM + suffix, _csv_bytes(path, [pairs[i][1] for i in picked], rates), note
    table = _arrow_table(path).take(picked)
    if "pass_rate" in table.column_names:
        table = table.drop_columns(["pass_rate"])
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.BufferOutputStream()
    pq.write_table(table.append_column("pass_rate", pa.array(rates, pa.float64())), buf)
    if path.is_dir():
        note += "; the eval data is a saved `datasets` directory, written as Parquet (datasets.load_dataset('parquet', ...))"
    return DATASET_STEM + ".parquet", buf.getvalue().to_pybytes(), note


def _has_pass_rate(pairs) -> bool:
    return any(isinstance(v, dict) and "pass_rate" in v for _, v in pairs[:1])


def _csv_bytes(path: Path, rows: list[dict], rates: list[float]) -> bytes:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh, delimiter=delimiter))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow([h for h in header if h != "pass_rate"] + ["pass_rate"])
    for row, p in zip(rows, rates):
        writer.writerow([row[h] for h in header if h != "pass_rate"] + [repr(p)])
    return buf.getvalue().encode()


def _arrow_table(path: Path):
    """The eval file as one Arrow table, rows in the order raw_rows reads them."""
    if path.is_dir():
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            ds = next(iter(ds.values()))  # raw_rows already refused a dict of several splits
        return ds.with_format("arrow")[:]
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _publish(out: Path, files: dict[str, bytes]) -> None:
    """Every file into a hidden staging directory, then moved into out, plan.json last: an error leaves
    out as it was."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
    try:
        for name, data in files.items():
            atomic_write_bytes(stage / name, data)
        for name in sorted(files, key=lambda n: n == PLAN_FILE):
            os.replace(stage / name, out / name)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    stage.rmdir()
