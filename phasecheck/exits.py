"""Every exception a command raises, mapped to one line on stderr and its exit code: the one place that does."""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .errors import ExitCode, PhasecheckError
from .options import debug_enabled

__all__ = ["MapErrors"]


class MapErrors:
    """Maps every exception to one line on stderr and its exit code: the one place that does.

    0 and 1 are verdicts, so nothing that went wrong may end with them: a PhasecheckError exits with its
    own code, a click error with 2, an unexpected exception with 3 (its traceback in a log file, or on
    stderr with --debug)."""

    def invoke(self, ctx: click.Context):
        # Our own progress lines say what is happening; the libraries' per-file bars are noise here.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.UsageError):
            raise
        except click.exceptions.Abort:  # EOF or ^C at a prompt; click would exit 1
            click.echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except click.ClickException as exc:  # click's own default exit code is 1, a verdict
            exc.exit_code = int(ExitCode.USAGE)
            raise
        except PhasecheckError as exc:
            _show_debug_traceback()
            click.echo(f"error: {_located(exc, str(exc))}", err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except BrokenPipeError:  # `phasecheck checks | head`: the reader left; not a crash
            _silence_stdout()
            ctx.exit(int(ExitCode.BROKEN_PIPE))
        except Exception as exc:  # noqa: BLE001 - the one place an unforeseen failure becomes exit 3
            click.echo(f"error: {_crash_line(exc)}", err=True)
            ctx.exit(int(ExitCode.RUNTIME))


def _located(exc: BaseException, message: str) -> str:
    from .stages import stage_of

    where = stage_of(exc)
    return f"{message} (during {where})" if where and debug_enabled() else message


def _show_debug_traceback() -> None:
    if debug_enabled():
        import traceback

        traceback.print_exc(file=sys.stderr)


def _crash_line(exc: BaseException) -> str:
    """One line for an unexpected exception: what failed, in which stage, and where the traceback is."""
    import traceback

    from .stages import stage_of

    where = stage_of(exc) or "the command"
    what = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    what = what if len(what) <= 200 else what[:197] + "..."
    text = "".join(traceback.format_exception(exc))
    if debug_enabled():
        sys.stderr.write(text)
        return f"internal error during {where}: {what} (traceback above; exit 3)"
    log = _write_crash_log(text)
    more = f"traceback in {log}" if log else "rerun with --debug for the traceback"
    return f"internal error during {where}: {what} ({more}, or rerun with --debug; exit 3)"


def _write_crash_log(text: str) -> str | None:
    """Save a traceback under the user's log directory; None when that cannot be written either."""
    import time
    from pathlib import Path

    from .atomic import atomic_write_text

    try:
        import platformdirs

        base = Path(os.environ.get("PHASECHECK_LOG_DIR") or platformdirs.user_log_dir("phasecheck"))
        path = base / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        atomic_write_text(path, f"phasecheck {__version__}\nargv: {sys.argv!r}\n\n{text}")
        return str(path)
    except Exception:  # noqa: BLE001 - a crash report must never crash
        return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not raise into the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
