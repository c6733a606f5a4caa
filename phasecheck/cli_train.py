"""The training commands: `train grpo|sft|gft` and `lifecycle` (check -> GRPO -> check -> SFT -> check)."""

from __future__ import annotations

import sys

import click

from .options import task_argument, task_name, task_option

__all__ = ["train", "lifecycle"]


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


@click.command()
@click.argument("kind", type=click.Choice(["grpo", "sft", "gft", "dpo"]))
@task_argument
@task_option
@click.option(
    "--force",
    is_flag=True,
    help="Run SFT or GFT although the verdict gate refuses it (a loud warning; recorded in the checkpoint).",
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
    """Train with GRPO (always allowed), SFT or GFT (only once the newest verdict is GRADUATED), or DPO on a
    GRPO checkpoint's residual failures (always allowed)."""
    from .errors import ConfigError
    from .task import find_task

    task = find_task(task_name(task_arg, task_opt))
    if force and kind not in ("sft", "gft"):
        raise ConfigError(f"--force only applies to `train sft` and `train gft`: {kind.upper()} is always allowed")
    if backend == "trl" and kind == "gft":
        raise ConfigError("`train gft` has no TRL backend; use --backend builtin")
    if backend == "trl" and resume:
        raise ConfigError("--resume works with --backend builtin; TRL resumes from its own output_dir")
    on_step, close = _step_bar(f"{kind} {task.name}")
    try:
        path, summary = _run_training(
            task,
            kind,
            backend,
            force=force,
            out_dir=out_dir,
            model=model,
            resume=resume,
            max_steps=max_steps,
            on_step=on_step,
        )
    except KeyboardInterrupt as exc:
        close()
        if getattr(exc, "checkpoint", None):  # training.Interrupted: the steps done were saved
            click.echo(f"interrupted: checkpoint saved to {exc.checkpoint}", err=True)
        raise
    close()
    click.echo(f"{kind}: {summary}; checkpoint {path}")
    if kind == "grpo":
        click.echo("Next: phasecheck check --after-grpo")
    if kind == "dpo":
        click.echo(f"Next: phasecheck check --after-grpo --model {path}")


@click.command()
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
@click.option(
    "--crystallise",
    type=click.Choice(["sft", "gft"]),
    default="sft",
    show_default=True,
    help="How a graduated domain is crystallised: SFT, or GFT (demonstrations and the policy's own samples).",
)
@click.option(
    "--dpo", is_flag=True, help="Run a DPO pass on the crystallised model's residual failures before the final check."
)
@click.pass_context
def lifecycle(
    ctx: click.Context,
    task_arg: str | None,
    task_opt: str | None,
    backend: str,
    out_dir: str | None,
    crystallise: str,
    dpo: bool,
) -> None:
    """Run check -> GRPO (if GRPO PHASE) -> check --after-grpo -> SFT or GFT (if GRADUATED) -> [DPO] -> final check."""
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

    if backend == "trl" and crystallise == "gft":
        from .errors import ConfigError

        raise ConfigError("--crystallise gft has no TRL backend; use --backend builtin")
    summary = run_lifecycle(task, out_dir=out_dir, backend=backend, crystallise=crystallise, dpo=dpo, on_event=event)
    click.echo(f"lifecycle: {summary.outcome}")
    ctx.exit(summary.exit_code)


def _run_training(task, kind: str, backend: str, *, force: bool, out_dir, model, resume, max_steps, on_step):
    """Train with the chosen loop; returns the checkpoint and a one-line summary."""
    warn = lambda msg: click.secho(msg, fg="red", bold=True, err=True)  # noqa: E731
    common = {"out_dir": out_dir, "model": model, "max_steps": max_steps}
    if kind == "grpo":
        if backend == "trl":
            from .training.trl_backend import train_grpo_trl

            res = train_grpo_trl(task, on_step=on_step, **common)
        else:
            from .training.grpo import train_grpo

            res = train_grpo(task, resume=resume, on_step=on_step, **common)
        return res.checkpoint, f"{res.steps} steps" + _zero_std_text(getattr(res, "zero_std", None) or {})
    if kind == "dpo":
        from .training.dpo import train_dpo
        from .training.trl_dpo import train_dpo_trl

        res = (
            train_dpo_trl(task, **common)
            if backend == "trl"
            else train_dpo(task, resume=resume, on_step=on_step, **common)
        )
        return res.checkpoint, f"{res.steps} steps on {res.pairs}"
    if kind == "gft":
        from .training.gft import train_gft

        res = train_gft(task, force=force, resume=resume, on_step=on_step, on_warning=warn, **common)
        return res.checkpoint, f"{res.steps} steps"
    if backend == "trl":
        from .training.trl_backend import train_sft_trl

        return train_sft_trl(task, force=force, on_warning=warn, **common), "TRL SFT"
    from .training.sft import train_sft

    res = train_sft(task, force=force, resume=resume, on_step=on_step, on_warning=warn, **common)
    if res.eval_loss_before is not None:
        return res.checkpoint, f"{res.steps} steps, eval loss {res.eval_loss_before} -> {res.eval_loss_after}"
    return res.checkpoint, f"{res.steps} steps, train loss {res.train_loss_last:.4g}"


def _zero_std_text(z: dict) -> str:
    """'; zero-variance groups 31% [22–41%] (predicted 28% [15–44%], 12 of 24 prompts)', or ''."""
    from .results import band, pct

    if "met" not in z:
        return ""
    text = f"; zero-variance groups {pct(z['met'])} [{band(*z['met_ci'])}]"
    if "predicted_zero_std" in z:
        text += f" (predicted {pct(z['predicted_zero_std'])} [{band(*z['predicted_zero_std_ci'])}]"
        if "prompts_trained" in z:
            text += f", {z['prompts_trained']} of {z['prompts_total']} prompts"
        text += ")"
    return text
