"""The public surface for plugin authors. Import from here; everything else in phasecheck may change.

A plugin is a class registered under an entry-point group in your distribution's metadata:

    [project.entry-points."phasecheck.checks"]      # also: phasecheck.verifiers, .engines, .reporters
    my_check = "my_package.checks:MyCheck"

Checks (`Check`): set `id`, `question`, `Params` (a `StrictParams` model: the task's `checks.<id>:`
block, validated before anything runs) and `conditions`, and implement `measure(evidence, params)`.
`measure` reads an `EvidenceView` (frozen: examples, demonstrations, graded samples and demonstrations,
the task, an earlier verdict under --compare) and returns a `Measurement` (metrics, a headline of what
was measured, findings, files to write as `Output`s). It raises `Unavailable` when this run lacks what
it needs, and the check is skipped with that reason. The `Condition`s then judge the metrics: the
status is the most severe among those that do not hold. A check that raises anything else is reported
as `error`, and never crashes the run.

Intervals: `clustered_proportion` and `clustered_mean` treat prompts as clusters (a prompt's samples are
not independent draws) and bound the share of the task a few prompts can miss; say how sure a figure is.

Verifiers (`Verifier`), engines (`EngineBase`) and reporters (`Reporter`): see their docstrings.
`examples/plugin/` is a distribution that adds a check this way; `phasecheck checks` lists what is installed.
"""

from __future__ import annotations

from .checks.base import Check, Condition, Measurement, Output, StrictParams, Unavailable
from .evidence import EvidenceView, GradedDemo, GradedSample
from .grading.base import Judgement, Verifier
from .records import Demonstration, Example, Grade, Outcome, Sample
from .reports.base import Reporter
from .results import CheckResult, Finding, Status, Verdict
from .sampling.base import EngineBase
from .stats import Interval, clustered_mean, clustered_proportion

__all__ = [
    "Check",
    "Condition",
    "Measurement",
    "Output",
    "StrictParams",
    "Unavailable",
    "EvidenceView",
    "GradedSample",
    "GradedDemo",
    "Verifier",
    "Judgement",
    "EngineBase",
    "Reporter",
    "Example",
    "Demonstration",
    "Sample",
    "Grade",
    "Outcome",
    "CheckResult",
    "Finding",
    "Status",
    "Verdict",
    "Interval",
    "clustered_proportion",
    "clustered_mean",
]
