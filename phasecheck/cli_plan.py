"""`phasecheck plan`: from the newest verdict's per-prompt table to a GRPO-ready dataset and framework settings."""

from __future__ import annotations

import math

import click

from .options import task_argument, task_name, task_option
from .results import band, pct

__all__ = ["plan"]


def _times(x: float | None, to=round, guard: float = 0.0) -> str:
    return "unbounded" if x is None else f"{to(100 * x + guard) / 100:.2f}"


def _span(interval: list | None) -> str:
    """Rounded outward, as `results.band` rounds a share: the printed interval never claims more."""
    if interval is None:
        return "no interval: weighted by copies"
    return f"{_times(interval[0], math.floor, 1e-9)}–{_times(interval[1], math.ceil, -1e-9)}"


def _share(figure: dict) -> str:
    """'22% (95% CI 10–34%)', as a check's headline prints it."""
    return f"{pct(figure['share'])} ({figure['confidence']:.0%} CI {band(*figure['interval'])})"


@click.command("plan")
@task_argument
@task_option
@click.option(
    "--verdict",
    "verdict_file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="VERDICT.json",
    help="Plan from this verdict (default: the newest recorded for the task); prompts.jsonl must sit beside it.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the plan goes (default: plan/ beside the verdict).",
)
@click.option(
    "--min-pass",
    type=click.FloatRange(0, 1),
    default=None,
    help="Keep prompts with pass rate >= this (default: > 0, i.e. solved at least once).",
)
@click.option(
    "--max-pass",
    type=click.FloatRange(0, 1),
    default=None,
    help="Keep prompts with pass rate <= this (default: < 1, i.e. failed at least once).",
)
@click.option(
    "--oversample",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="K",
    help="Write each prompt 1 + round(K * 4p(1-p)) times (learnability-based sampling; K extra at p = 0.5).",
)
def plan(
    task_arg: str | None,
    task_opt: str | None,
    verdict_file: str | None,
    out_dir: str | None,
    min_pass: float | None,
    max_pass: float | None,
    oversample: int,
) -> None:
    """Write a GRPO training plan from a verdict: the learnable prompts in the eval file's format with a
    pass_rate column, the zero-variance share before and after filtering, and TRL, verl, OpenRLHF and
    prime-rl settings (plan.json says what each figure rests on)."""
    from .data_formats import show_path
    from .plan import PlanOptions, make_plan
    from .task import find_task

    task = find_task(task_name(task_arg, task_opt))
    options = PlanOptions(min_pass=min_pass, max_pass=max_pass, oversample=oversample)
    result = make_plan(task, verdict=verdict_file, out_dir=out_dir, options=options)
    s = result.summary
    classes = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in s["classes"].items())
    click.echo(f"plan: {s['prompts']} prompts ({classes}); kept {s['kept']} ({s['selection']['rule']})")
    zero, bound = s["zero_variance"], " (upper bounds)" if s["upper_bounds"] else ""
    parts = [
        f"{_share(zero[k])} {label}"
        for k, label in (("before_filtering", "before filtering"), ("after_filtering", "after"))
    ]
    click.echo(f"zero-variance groups of {s['group_size']}: " + ", ".join(parts) + bound)
    if "as_written" in zero:
        click.echo(f"  with oversampling: {pct(zero['as_written']['share'])} of the groups an epoch draws")
    dyn = s["dynamic_sampling"]
    shown = [
        f"{_times(dyn[k]['expected'])} ({_span(dyn[k]['interval'])}) {label}"
        for k, label in (("before_filtering", "unfiltered"), ("trained_on", "on the plan's data"))
    ]
    click.echo("dynamic sampling, generation batches per training batch: " + ", ".join(shown))
    names = [result.files["dataset"]] + [f for k, f in result.files.items() if k != "dataset"]
    click.echo(f"wrote {show_path(result.out_dir)}/: " + ", ".join(names))
