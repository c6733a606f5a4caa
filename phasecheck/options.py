"""Click options shared by several commands, defined once."""

from __future__ import annotations

import os

import click

task_argument = click.argument("task_arg", metavar="[TASK]", required=False)
task_option = click.option(
    "--task", "task_opt", metavar="NAME", help="Task name (in ./phasecheck.yaml or ./tasks/*.yaml) or task file path."
)
out_option = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output directory (default reports/<task-slug>/).",
)
verbose_option = click.option("-v", "--verbose", count=True, help="Show findings and more detail.")

_debug = {"on": False}


def debug_enabled() -> bool:
    """--debug was given (on the group or the command), or PHASECHECK_DEBUG is set."""
    return _debug["on"] or os.environ.get("PHASECHECK_DEBUG", "") not in ("", "0")


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value:
        return
    import logging

    _debug["on"] = True
    log = logging.getLogger("phasecheck")
    if not any(getattr(h, "_phasecheck", False) for h in log.handlers):
        handler = logging.StreamHandler()  # stderr, looked up when written
        handler.setFormatter(logging.Formatter("debug: %(message)s"))
        handler._phasecheck = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.DEBUG)


debug_option = click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help="Log each stage and print tracebacks (also: PHASECHECK_DEBUG=1).",
)


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


format_option = click.option(
    "--format",
    "formats",
    multiple=True,
    metavar="FMT",
    help="Report format to write (text, json, junit, html); repeatable. Default: text, json and html.",
)
fail_on_warn_option = click.option(
    "--fail-on-warn", is_flag=True, help="Treat a warning from any check as a failure for the verdict."
)


def check_options(fn):
    """The options of `phasecheck check` and `check_domain_phase`, defined once for both."""
    for deco in reversed(
        [
            task_argument,
            task_option,
            click.option(
                "--after-grpo",
                is_flag=True,
                help="Evaluate the newest GRPO checkpoint of this task and add its verified outputs to the validated set.",
            ),
            click.option(
                "--model", metavar="NAME|PATH", help="Model alias, local directory or hub id (overrides the task)."
            ),
            click.option("--engine", metavar="NAME", help="Sampling engine: transformers, vllm, openai, replay."),
            click.option("--runs", type=click.IntRange(min=1), help="Independent sampled runs (R)."),
            click.option("--n", "n", type=click.IntRange(min=1), help="Samples per prompt per run."),
            click.option("--seed", type=click.IntRange(min=0), help="Base sampling seed."),
            click.option(
                "--samples",
                "samples_file",
                type=click.Path(dir_okay=False),
                help="Replay samples from this JSONL file instead of sampling a model.",
            ),
            click.option(
                "--only",
                multiple=True,
                callback=csv_list,
                metavar="IDS",
                help="Run only these checks (comma-separated; repeatable).",
            ),
            out_option,
            format_option,
            fail_on_warn_option,
            verbose_option,
            click.option("--no-cache", is_flag=True, help="Sample afresh instead of reusing cached samples."),
            click.option(
                "--compare",
                type=click.Path(dir_okay=False),
                metavar="OLD.json",
                help="Compare with an earlier verdict.json and name the prompts that regressed.",
            ),
            debug_option,
        ]
    ):
        fn = deco(fn)
    return fn


def reproducible_argv(ctx: click.Context, prefix: list[str]) -> list[str]:
    """The options this run was given, as argv that reproduces it (deterministic, unlike sys.argv)."""
    argv = list(prefix)
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
