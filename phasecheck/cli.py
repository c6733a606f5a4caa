"""The command line: a thin click layer. Parse, call the library, render, map errors to exit codes."""
from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import ExitCode, PhasecheckError
from .options import task_argument, task_name, task_option


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


def main() -> None:
    cli(prog_name="phasecheck")


def check_domain_phase() -> None:
    """`check_domain_phase` is `phasecheck check`."""
    sys.argv[1:1] = ["check"]
    cli(prog_name="check_domain_phase")
