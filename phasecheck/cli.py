"""The command line: a thin click layer. Parse, call the library, render, map errors to exit codes."""
from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import ExitCode, PhasecheckError
from .options import (csv_list, fail_on_warn_option, format_option, out_option, task_argument, task_name,
                      task_option, verbose_option)


class _Group(click.Group):
    """Maps PhasecheckError to one line on stderr and its exit code, in one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PhasecheckError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phasecheck")
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
    """Validate a task file and read its data files, without sampling anything."""
    from .data import load_demonstrations, load_examples
    from .task import find_task
    spec = find_task(task_name(task_arg, task_opt))
    click.echo(f"task: {spec.name} ({spec.source})")
    for role, loader in (("eval", load_examples), ("train", load_demonstrations)):
        if getattr(spec.data, role) is not None:
            loaded = loader(spec)
            click.echo(f"{role}: {loaded.summary()}")


# --- check commands ---

def _check_params(fn):
    for deco in reversed([
        task_argument, task_option,
        click.option("--after-grpo", is_flag=True,
                     help="Evaluate the newest GRPO checkpoint of this task and add its verified outputs to the validated set."),
        click.option("--model", metavar="NAME|PATH", help="Model alias, local directory or hub id (overrides the task)."),
        click.option("--engine", metavar="NAME", help="Sampling engine: transformers, vllm, openai, replay."),
        click.option("--runs", type=click.IntRange(min=1), help="Independent sampled runs (R)."),
        click.option("--n", "n", type=click.IntRange(min=1), help="Samples per prompt per run."),
        click.option("--seed", type=click.IntRange(min=0), help="Base sampling seed."),
        click.option("--samples", "samples_file", type=click.Path(dir_okay=False),
                     help="Replay samples from this JSONL file instead of sampling a model."),
        click.option("--only", multiple=True, callback=csv_list, metavar="IDS",
                     help="Run only these checks (comma-separated; repeatable)."),
        out_option, format_option, fail_on_warn_option, verbose_option,
        click.option("--no-cache", is_flag=True, help="Sample afresh instead of reusing cached samples."),
        click.option("--compare", type=click.Path(dir_okay=False), metavar="OLD.json",
                     help="Compare with an earlier verdict.json and name the prompts that regressed."),
    ]):
        fn = deco(fn)
    return fn


def _run_check(task_arg, task_opt, after_grpo, model, engine, runs, n, seed, samples_file, only, out_dir,
               formats, fail_on_warn, verbose, no_cache, compare) -> None:
    from pathlib import Path

    from . import reports
    from .engine import CheckOptions, apply_overrides, check_task
    from .results import Phase
    from .task import find_task

    task = find_task(task_name(task_arg, task_opt))
    task = apply_overrides(task, model=None if after_grpo else model, engine=engine, runs=runs, n=n, seed=seed,
                           samples=samples_file)
    formats = list(dict.fromkeys(formats or ("text", "json")))
    for fmt in formats:
        reports.reporter(fmt, **({"unicode": True} if fmt == "text" else {}))   # unknown format: exit 2 now
    opts = CheckOptions(only=only, after_grpo=after_grpo, fail_on_warn=fail_on_warn, use_cache=not no_cache,
                        compare=Path(compare) if compare else None, out_dir=Path(out_dir) if out_dir else None,
                        command=_argv(click.get_current_context()))
    verdict, path = check_task(task, opts, model_override=model)
    others = [f for f in formats if f != "json"]
    if others:
        reports.write_reports(verdict, path.parent, others)
    shown = "text" if "text" in formats else formats[0]
    click.echo(reports.render(verdict, shown, out_dir=path.parent, verbose=verbose), nl=False)
    if verbose:
        click.echo(f"Saved {path}", err=True)
    codes = {Phase.GRADUATED: ExitCode.GRADUATED, Phase.GRPO_PHASE: ExitCode.GRPO_PHASE,
             Phase.INCONCLUSIVE: ExitCode.RUNTIME}
    raise SystemExit(int(codes[verdict.status]))


def _argv(ctx: click.Context) -> list[str]:
    """The options this run was given, as argv that reproduces it (deterministic, unlike sys.argv)."""
    argv = ["phasecheck", "check"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value in (None, False, (), []) or not isinstance(param, click.Option):
            if isinstance(param, click.Argument) and value:
                argv.append(str(value))
            continue
        flag = max(param.opts, key=len)
        if param.is_flag or param.count:
            argv += [flag] * (value if param.count else 1)
        else:
            argv += [x for v in (value if isinstance(value, (list, tuple)) else [value]) for x in (flag, str(v))]
    return argv


@cli.command()
@_check_params
def check(**kwargs) -> None:
    """Run the graduation checks on a task and print the verdict (exit 0 GRADUATED, 1 GRPO PHASE,
    2 bad usage or input, 3 INCONCLUSIVE or runtime failure)."""
    _run_check(**kwargs)


@cli.command("checks")
def checks_cmd() -> None:
    """List the installed graduation checks, their questions and parameters."""
    from . import plugins
    for name in plugins.available("checks"):
        plugin = plugins.load("checks", name)
        click.echo(f"{name}: {plugin.question}")
        for field_name, info in plugin.Params.model_fields.items():
            default = "required" if info.is_required() else f"default {info.get_default(call_default_factory=True)!r}"
            click.echo(f"    {field_name} ({default}): {info.description or ''}".rstrip())


class _StandaloneCommand(click.Command):
    """`check_domain_phase` runs outside the group, so it maps errors to exit codes the way _Group does."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PhasecheckError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.command("check_domain_phase", cls=_StandaloneCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="check_domain_phase")
@_check_params
def check_domain_phase_cmd(**kwargs) -> None:
    """Run the graduation checks on a task (the same command as `phasecheck check`)."""
    _run_check(**kwargs)


# --- report commands ---

@cli.command()
@click.argument("verdict_file", metavar="VERDICT.json", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", default="text", show_default=True, metavar="FORMAT",
              help="html, text, junit or json (or another installed reporter).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the report to FILE (atomically) instead of stdout.")
@click.option("--compare", type=click.Path(dir_okay=False), metavar="OLD.json",
              help="Also show what changed since this earlier verdict.")
@verbose_option
def report(verdict_file: str, fmt: str, out_file: str | None, compare: str | None, verbose: int) -> None:
    """Re-render a saved verdict.json; samples nothing and imports no torch."""
    from pathlib import Path

    from . import reports
    from .state import atomic_write_text
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
@click.option("--interactive/--no-interactive", default=None,
              help="Pick a check, then a finding, at prompts (default: when stdin and stdout are a terminal).")
def inspect_cmd(verdict_file: str, check_id: str | None, token: str | None, limit: int,
                interactive: bool | None) -> None:
    """Drill into a saved verdict: findings per check, failing examples, rows carrying a token."""
    from pathlib import Path

    from . import reports
    from .reports.inspect import Inspector
    path = Path(verdict_file)
    insp = Inspector(reports.load_verdict(path), path.parent, color=reports.use_color(),
                     unicode=reports.use_unicode())
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
            pick = click.prompt("Finding number, f = failing examples, b = back", default="b",
                                show_default=False).strip()
            if pick in ("b", "back", ""):
                break
            if pick in ("q", "quit"):
                return
            if pick == "f":
                click.echo(insp.failing(check, limit=limit), nl=False)
            elif pick.isdigit() and 1 <= int(pick) <= len(check.findings):
                finding = check.findings[int(pick) - 1]
                tok = finding.data.get("token")
                click.echo(insp.token(str(tok), limit=limit, ids=finding.example_ids) if tok else
                           insp.failing(check, limit=limit, ids=finding.example_ids), nl=False)
            else:
                click.echo(f"no finding {pick!r}")


def main() -> None:
    cli(prog_name="phasecheck")


def check_domain_phase() -> None:
    """`check_domain_phase` is `phasecheck check`."""
    check_domain_phase_cmd(prog_name="check_domain_phase")
