"""phasecheck: is this domain still in its GRPO discovery phase, or has it graduated to SFT?"""

from __future__ import annotations

from .errors import ConfigError, DataError, EngineError, ExitCode, GateError, PhasecheckError, VerifierError
from .records import Demonstration, Example, Grade, Outcome, Sample
from .results import CheckResult, Finding, Phase, Status, Verdict
from .task import TaskSpec, find_task, load_task

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ConfigError",
    "DataError",
    "EngineError",
    "ExitCode",
    "GateError",
    "PhasecheckError",
    "VerifierError",
    "Demonstration",
    "Example",
    "Grade",
    "Outcome",
    "Sample",
    "CheckResult",
    "Finding",
    "Phase",
    "Status",
    "Verdict",
    "TaskSpec",
    "find_task",
    "load_task",
]
