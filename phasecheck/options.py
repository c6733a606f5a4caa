"""Click options shared by several commands, defined once."""
from __future__ import annotations

import click

task_argument = click.argument("task_arg", metavar="[TASK]", required=False)
task_option = click.option("--task", "task_opt", metavar="NAME",
                           help="Task name (in ./phasecheck.yaml or ./tasks/*.yaml) or task file path.")
out_option = click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                          help="Output directory (default reports/<task-slug>/).")
verbose_option = click.option("-v", "--verbose", count=True, help="Show findings and more detail.")


def task_name(task_arg: str | None, task_opt: str | None) -> str | None:
    """TASK positional or --task; giving both with different values is a usage error."""
    if task_arg and task_opt and task_arg != task_opt:
        raise click.UsageError(f"got TASK {task_arg!r} and --task {task_opt!r}; give one")
    return task_opt or task_arg


# --- check options ---
def csv_list(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str] | None:
    """`--only a,b --only c` -> [a, b, c]; None when not given."""
    items = [v.strip() for chunk in value for v in chunk.split(",") if v.strip()]
    return items or None


format_option = click.option("--format", "formats", multiple=True, metavar="FMT",
                             help="Report format to write (text, json, junit, html); repeatable. Default: text and json.")
fail_on_warn_option = click.option("--fail-on-warn", is_flag=True,
                                   help="Treat a warning from any check as a failure for the verdict.")
