"""The command line: a thin click layer. Parse, call the library, render, map errors to exit codes."""

from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import ExitCode, PhasecheckError
from .exits import MapErrors as _MapErrors
from .options import (
    check_options,
    debug_option,
    reproducible_argv,
    task_argument,
    task_name,
    task_option,
    verbose_option,
)


class _Group(_MapErrors, click.Group):
    pass


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phasecheck")
@debug_option
def cli() -> None:
    """Is this domain still in its GRPO discovery phase, or has it graduated to SFT?"""


@cli.command()
@click.option("--verdict", "verdict_schema", is_flag=True, help="Print the verdict.json schema instead.")
def schema(verdict_schema: bool) -> None:
    """Print the JSON Schema of task files (or of verdict.json)."""
    if verdict_schema:
        from .results import Verdict

        doc = Verdict.model_json_schema(by_alias=True)
    else:
        from .task import TaskSpec

        doc = TaskSpec.model_json_schema()
    click.echo(json.dumps(doc, indent=2))


@cli.command()
@task_argument
@task_option
def validate(task_arg: str | None, task_opt: str | None) -> None:
    """Validate a task file, every plugin's parameters and the data files, without sampling anything."""
    from .data import load_demonstrations, load_examples
    from .grading import Grader
    from .runner import plan_checks
    from .sampling import validate_engine
    from .task import find_task

    spec = find_task(task_name(task_arg, task_opt))
    plan_checks(spec)  # each check's own Params (the second config stage)
    validate_engine(spec)
    Grader(spec).close()  # verifier params and vocabulary; starts no worker
    click.echo(f"task: {spec.name} ({spec.source})")
    for role, loader in (("eval", load_examples), ("train", load_demonstrations)):
        if getattr(spec.data, role) is not None:
            loaded = loader(spec)
            click.echo(f"{role}: {loaded.summary()}")


# --- check commands ---


def _run_check(
    task_arg,
    task_opt,
    after_grpo,
    model,
    engine,
    runs,
    n,
    seed,
    samples_file,
    only,
    out_dir,
    formats,
    fail_on_warn,
    verbose,
    no_cache,
    compare,
) -> None:
    from pathlib import Path

    from . import reports
    from .results import Phase
    from .runner import CheckOptions, apply_overrides, check_task
    from .task import find_task

    task = find_task(task_name(task_arg, task_opt))
    task = apply_overrides(
        task, model=None if after_grpo else model, engine=engine, runs=runs, n=n, seed=seed, samples=samples_file
    )
    formats = list(dict.fromkeys(formats or ("text", "json", "html")))
    for fmt in formats:
        reports.reporter(fmt, **({"unicode": True} if fmt == "text" else {}))  # unknown format: exit 2 now
    opts = CheckOptions(
        only=only,
        after_grpo=after_grpo,
        fail_on_warn=fail_on_warn,
        use_cache=not no_cache,
        compare=Path(compare) if compare else None,
        out_dir=Path(out_dir) if out_dir else None,
        command=reproducible_argv(click.get_current_context(), ["phasecheck", "check"]),
    )
    verdict, path = check_task(task, opts, model_override=model)
    written = [path] + list(reports.write_reports(verdict, path.parent, [f for f in formats if f != "json"]).values())
    shown = "text" if "text" in formats else formats[0]
    click.echo(reports.render(verdict, shown, out_dir=path.parent, verbose=verbose), nl=False)
    if shown == "text":
        for label, p in zip(["Reports:"] + [""] * len(written), written):
            click.echo(f"{label:<9}{_display_path(p)}")
    codes = {
        Phase.GRADUATED: ExitCode.GRADUATED,
        Phase.GRPO_PHASE: ExitCode.GRPO_PHASE,
        Phase.INCONCLUSIVE: ExitCode.RUNTIME,
    }
    click.get_current_context().exit(int(codes[verdict.status]))


def _display_path(path) -> str:
    """A path relative to the working directory when it lies under it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@cli.command()
@check_options
def check(**kwargs) -> None:
    """Run the graduation checks on a task and print the verdict (exit 0 GRADUATED, 1 GRPO PHASE,
    2 bad usage or input, 3 INCONCLUSIVE or runtime failure)."""
    _run_check(**kwargs)


@cli.command("checks")
def checks_cmd() -> None:
    """List the installed graduation checks: their questions, the conditions that judge them, and parameters."""
    from . import plugins

    for name in plugins.available("checks"):
        plugin = plugins.load("checks", name)
        click.echo(f"{name}: {plugin.question}")
        for cond in plugin.conditions:
            click.echo(f"  {cond.fails_as.value} unless {cond.name}")
        for field_name, info in plugin.Params.model_fields.items():
            default = "required" if info.is_required() else f"default {info.get_default(call_default_factory=True)!r}"
            click.echo(f"    {field_name} ({default}): {info.description or ''}".rstrip())


class _StandaloneCommand(_MapErrors, click.Command):
    """`check_domain_phase` runs outside the group; it maps errors the same way."""


@click.command("check_domain_phase", cls=_StandaloneCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="check_domain_phase")
@check_options
def check_domain_phase_cmd(**kwargs) -> None:
    """Run the graduation checks on a task (the same command as `phasecheck check`)."""
    _run_check(**kwargs)


# --- report commands ---


@cli.command()
@click.argument("verdict_file", metavar="VERDICT.json", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    default="text",
    show_default=True,
    metavar="FORMAT",
    help="html, text, junit or json (or another installed reporter).",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the report to FILE (atomically) instead of stdout.",
)
@click.option(
    "--compare",
    type=click.Path(dir_okay=False),
    metavar="OLD.json",
    help="Also show what changed since this earlier verdict.",
)
@verbose_option
def report(verdict_file: str, fmt: str, out_file: str | None, compare: str | None, verbose: int) -> None:
    """Re-render a saved verdict.json; samples nothing and imports no torch."""
    from pathlib import Path

    from . import reports
    from .atomic import atomic_write_text

    path = Path(verdict_file)
    verdict = reports.load_verdict(path)
    if compare:
        old = reports.load_verdict(compare)
        verdict = verdict.model_copy(update={"compare": reports.compare_verdicts(old, verdict, old_path=compare)})
    if out_file:
        rep = reports.reporter(fmt, **({"unicode": True, "color": False} if fmt == "text" else {}))
        atomic_write_text(out_file, rep.render(verdict, out_dir=path.parent, verbose=verbose))
        click.echo(f"wrote {out_file}", err=True)
    else:
        click.echo(reports.render(verdict, fmt, out_dir=path.parent, verbose=verbose), nl=False)


@cli.command("inspect")
@click.argument("verdict_file", metavar="VERDICT.json", type=click.Path(dir_okay=False))
@click.option("--check", "check_id", metavar="ID", help="Show this check's findings and its failing examples.")
@click.option("--token", metavar="TOKEN", help="Show the saved rows that carry this contamination token.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="Rows shown per list.")
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="Pick a check, then a finding, at prompts (default: when stdin and stdout are a terminal).",
)
def inspect_cmd(
    verdict_file: str, check_id: str | None, token: str | None, limit: int, interactive: bool | None
) -> None:
    """Drill into a saved verdict: findings per check, failing examples, rows carrying a token."""
    from pathlib import Path

    from . import reports
    from .reports.inspect import Inspector

    path = Path(verdict_file)
    insp = Inspector(reports.load_verdict(path), path.parent, color=reports.use_color(), unicode=reports.use_unicode())
    if check_id:
        check = insp.check(check_id)
        click.echo(insp.findings(check) + "\n" + insp.failing(check, limit=limit), nl=False)
    if token:
        click.echo(insp.token(token, limit=limit), nl=False)
    if check_id or token:
        return
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not interactive:
        click.echo(insp.checks_menu(), nl=False)
        for check in insp.verdict.checks:
            if check.findings:
                click.echo("\n" + insp.findings(check), nl=False)
        click.echo("\nMore: --check ID (failing examples), --token TOKEN (rows carrying it).")
        return
    _inspect_prompts(insp, limit)


def _inspect_prompts(insp, limit: int) -> None:
    """Pick a check, then a finding; empty input goes back, q quits."""
    checks = insp.verdict.checks
    while True:
        click.echo(insp.checks_menu(), nl=False)
        pick = click.prompt("Check (number or id; q quits)", default="q", show_default=False).strip()
        if pick in ("q", "quit"):
            return
        try:
            check = checks[int(pick) - 1] if pick.isdigit() and 1 <= int(pick) <= len(checks) else insp.check(pick)
        except PhasecheckError as exc:
            click.echo(str(exc))
            continue
        while True:
            click.echo(insp.findings(check), nl=False)
            pick = click.prompt(
                "Finding number, f = failing examples, b = back", default="b", show_default=False
            ).strip()
            if pick in ("b", "back", ""):
                break
            if pick in ("q", "quit"):
                return
            if pick == "f":
                click.echo(insp.failing(check, limit=limit), nl=False)
            elif pick.isdigit() and 1 <= int(pick) <= len(check.findings):
                finding = check.findings[int(pick) - 1]
                tok = finding.data.get("token")
                click.echo(
                    insp.token(str(tok), limit=limit, ids=finding.example_ids)
                    if tok
                    else insp.failing(check, limit=limit, ids=finding.example_ids),
                    nl=False,
                )
            else:
                click.echo(f"no finding {pick!r}")


# --- training commands ---

_backend_option = click.option(
    "--backend",
    type=click.Choice(["builtin", "trl"]),
    default="builtin",
    show_default=True,
    help="builtin: the fast single-process loop; trl: TRL trainers (accelerate, multi-GPU).",
)


def _step_bar(label: str):
    """An on_step callback that draws a progress bar (on stderr) sized by the first line's total_steps."""
    state: dict = {}

    def show(line):
        if line is None:
            return ""
        keys = [k for k in ("reward_mean", "accuracy", "kl", "loss", "eval_loss") if line.get(k) is not None]
        return " ".join(f"{k}={line[k]:.3g}" for k in keys[:3])

    def on_step(line: dict) -> None:
        if "bar" not in state:
            state["bar"] = click.progressbar(
                length=int(line.get("total_steps", 1)), label=label, file=sys.stderr, item_show_func=show, show_pos=True
            )
            state["bar"].__enter__()
            state["done"] = 0
        step = int(line.get("step", 0))
        if step > state["done"]:
            state["bar"].update(step - state["done"], current_item=line)
            state["done"] = step

    def close() -> None:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)

    return on_step, close


@cli.command()
@click.argument("kind", type=click.Choice(["grpo", "sft"]))
@task_argument
@task_option
@click.option(
    "--force",
    is_flag=True,
    help="Run SFT although the verdict gate refuses it (a loud warning; recorded in the checkpoint).",
)
@_backend_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Checkpoint directory (default training.output_dir or runs/<task-slug>/<kind>/).",
)
@click.option(
    "--resume",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Continue from this checkpoint (builtin backend).",
)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many optimiser steps.")
@click.option("--model", default=None, help="Train this model (alias, HF dir, checkpoint) instead of the task's.")
def train(
    kind: str,
    task_arg: str | None,
    task_opt: str | None,
    force: bool,
    backend: str,
    out_dir: str | None,
    resume: str | None,
    max_steps: int | None,
    model: str | None,
) -> None:
    """Train with GRPO (always allowed) or SFT (only once the newest verdict is GRADUATED)."""
    from .errors import ConfigError
    from .task import find_task

    task = find_task(task_name(task_arg, task_opt))
    if force and kind == "grpo":
        raise ConfigError("--force only applies to `train sft`: GRPO is always allowed")
    if backend == "trl" and resume:
        raise ConfigError("--resume works with --backend builtin; TRL resumes from its own output_dir")
    on_step, close = _step_bar(f"{kind} {task.name}")
    warn = lambda msg: click.secho(msg, fg="red", bold=True, err=True)  # noqa: E731
    try:
        if kind == "grpo" and backend == "trl":
            from .training.trl_backend import train_grpo_trl

            res = train_grpo_trl(task, out_dir=out_dir, model=model, max_steps=max_steps, on_step=on_step)
            path, summary = res.checkpoint, f"{res.steps} steps"
        elif kind == "grpo":
            from .training.grpo import train_grpo

            res = train_grpo(task, out_dir=out_dir, model=model, resume=resume, max_steps=max_steps, on_step=on_step)
            path, summary = res.checkpoint, f"{res.steps} steps"
        elif backend == "trl":
            from .training.trl_backend import train_sft_trl

            path = train_sft_trl(task, force=force, out_dir=out_dir, model=model, max_steps=max_steps, on_warning=warn)
            summary = "TRL SFT"
        else:
            from .training.sft import train_sft

            res = train_sft(
                task,
                force=force,
                out_dir=out_dir,
                model=model,
                resume=resume,
                max_steps=max_steps,
                on_step=on_step,
                on_warning=warn,
            )
            path = res.checkpoint
            summary = (
                f"{res.steps} steps, eval loss {res.eval_loss_before} -> {res.eval_loss_after}"
                if res.eval_loss_before is not None
                else f"{res.steps} steps, train loss {res.train_loss_last:.4g}"
            )
    except KeyboardInterrupt as exc:
        close()
        if getattr(exc, "checkpoint", None):
            click.echo(f"interrupted: checkpoint saved to {exc.checkpoint}", err=True)
        raise
    close()
    click.echo(f"{kind}: {summary}; checkpoint {path}")
    if kind == "grpo":
        click.echo("Next: phasecheck check --after-grpo")


@cli.command()
@task_argument
@task_option
@_backend_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where checkpoints, verdicts and lifecycle.json go (default runs/<task-slug>/lifecycle/).",
)
@click.pass_context
def lifecycle(
    ctx: click.Context, task_arg: str | None, task_opt: str | None, backend: str, out_dir: str | None
) -> None:
    """Run check -> GRPO (if GRPO PHASE) -> check --after-grpo -> SFT (if GRADUATED) -> final check."""
    from .task import find_task
    from .training.lifecycle import run_lifecycle

    task = find_task(task_name(task_arg, task_opt))

    def event(e: dict) -> None:
        if e["event"] == "start":
            click.echo(f"==> {e['step']}")
        elif not e["ok"]:
            click.secho(f"    failed: {e['error']}", fg="red", err=True)
        else:
            details = {k: v for k, v in e.items() if k not in ("event", "step", "ok")}
            click.echo("    " + ", ".join(f"{k}: {v}" for k, v in details.items()))

    summary = run_lifecycle(task, out_dir=out_dir, backend=backend, on_event=event)
    click.echo(f"lifecycle: {summary.outcome}")
    ctx.exit(summary.exit_code)


def main() -> None:
    cli(prog_name="phasecheck")


def check_domain_phase() -> None:
    """`check_domain_phase` is `phasecheck check`."""
    check_domain_phase_cmd(prog_name="check_domain_phase")
