"""The command line: a thin click layer. Parse, call the library, render, map errors to exit codes."""

from __future__ import annotations

import json
import sys

import click

from . import __version__
from .cli_plan import plan
from .cli_train import lifecycle, train
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


# --- training commands (cli_train.py) ---

cli.add_command(train)
cli.add_command(lifecycle)
cli.add_command(plan)


def main() -> None:
    cli(prog_name="phasecheck")


def check_domain_phase() -> None:
    """`check_domain_phase` is `phasecheck check`."""
    check_domain_phase_cmd(prog_name="check_domain_phase")
