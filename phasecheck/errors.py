"""One exception tree and the exit codes; the CLI maps one to the other in one place."""

from __future__ import annotations

import enum

__all__ = [
    "ExitCode",
    "PhasecheckError",
    "ConfigError",
    "DataError",
    "EngineError",
    "VerifierError",
    "GateError",
    "PluginError",
]


class ExitCode(enum.IntEnum):
    GRADUATED = 0
    GRPO_PHASE = 1
    USAGE = 2  # usage, config or input error
    RUNTIME = 3  # INCONCLUSIVE verdict or runtime failure
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # stdout's reader went away (`| head`), as a shell reports SIGPIPE


class PhasecheckError(Exception):
    """Base of every error phasecheck raises on purpose; `str(exc)` is the one line a user sees."""

    exit_code: ExitCode = ExitCode.RUNTIME


class ConfigError(PhasecheckError):
    """A task file, option or plugin parameter is wrong."""

    exit_code = ExitCode.USAGE


class DataError(PhasecheckError):
    """A data file is missing, unreadable or has a bad row."""

    exit_code = ExitCode.USAGE


class PluginError(ConfigError):
    """A plugin id is unknown or a plugin breaks its contract."""


class EngineError(PhasecheckError):
    """A sampling engine cannot load its model or reach its server."""

    exit_code = ExitCode.RUNTIME


class VerifierError(PhasecheckError):
    """A verifier is misconfigured or was called wrongly."""

    exit_code = ExitCode.USAGE


class GateError(PhasecheckError):
    """Training was refused by the verdict gate."""

    exit_code = ExitCode.GRPO_PHASE
