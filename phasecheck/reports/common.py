"""Shared pieces of every report: reading a verdict's saved artifacts, labels, comparing two verdicts,
and the deterministic sampling-down of large runs. Reports only read saved files; they never re-sample."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..jsonl import json_lines, step_rows
from ..names import Artifact, CheckId, CheckMetric
from ..records import UNJUDGED, Outcome
from ..results import CheckResult, Phase, Status, Verdict, band, pct

__all__ = [
    "cut",
    "phase_label",
    "status_label",
    "read_jsonl",
    "artifact_path",
    "load_samples",
    "load_training_metrics",
    "token_rows",
    "failing_samples",
    "sample_down",
    "compare_verdicts",
    "find_check",
    "is_failure",
    "stable_key",
    "split_on_token",
    "advisory",
    "row_id",
    "clean_terminal",
    "grading_note",
    "coverage_ends",
]

_PHASE_LABELS = {Phase.GRADUATED: "GRADUATED", Phase.GRPO_PHASE: "GRPO PHASE", Phase.INCONCLUSIVE: "INCONCLUSIVE"}
# Artifacts whose rows hold text a contamination token can occur in, most telling first.
TEXT_ARTIFACTS = (Artifact.DEMONSTRATIONS, Artifact.SAMPLES, Artifact.VALIDATED)


_UNJUDGED_WORDS = {
    Outcome.TIMEOUT: "timed out",
    Outcome.TOO_LONG: "too long to judge",
    Outcome.ERROR: "could not be graded",
}

# C0/C1 controls other than tab and newline: model text must not move a terminal's cursor or recolour it.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_terminal(text: object) -> str:
    """Untrusted text made safe to print: control characters (ANSI escapes included) shown as \\xNN."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(text))


def cut(text: Any, limit: int) -> str:
    """Text shortened to `limit` characters, saying how much was left out."""
    text = "" if text is None else str(text)
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def phase_label(phase: Phase) -> str:
    return _PHASE_LABELS[Phase(phase)]


def status_label(status: Status) -> str:
    return Status(status).value.upper()


def advisory(check: CheckResult) -> bool:
    """A check that does not gate the verdict is shown as advisory."""
    return not check.blocking


def grading_note(verdict: Verdict) -> str | None:
    """One sentence on grades that could not be judged ("Grading: 3 of 512 samples timed out; ..."), or None."""
    parts = []
    for name, counts in verdict.grading.items():
        said = [f"{counts[k.value]} {_UNJUDGED_WORDS[k]}" for k in UNJUDGED if counts.get(k.value)]
        if said:
            parts.append(f"{', '.join(said)} of {counts.get('graded', '?')} {name}")
    if not parts:
        return None
    return f"Grading: {'; '.join(parts)} (timed out and too long score as wrong)."


def coverage_ends(curve: list[dict[str, Any]]) -> str:
    """'pass@1 42% [38–46%], pass@16 80% [72–86%], pass^16 10% [5–18%]': both ends of a coverage curve."""
    first, last = curve[0], curve[-1]

    def said(point: dict[str, Any], key: str) -> str:
        return f"{pct(point[key])} [{band(*point[key + '_ci'])}]"

    k = last["k"]
    return f"pass@1 {said(first, 'pass_at_k')}, pass@{k} {said(last, 'pass_at_k')}, pass^{k} {said(last, 'pass_hat_k')}"


def find_check(verdict: Verdict, check_id: str) -> CheckResult | None:
    return next((c for c in verdict.checks if c.id == check_id), None)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Object rows of a saved JSONL artifact; a bad line is a DataError naming the file and line."""
    return (row for _, row in json_lines(path) if isinstance(row, dict))


def artifact_path(verdict: Verdict, name: str, out_dir: Path | None) -> Path | None:
    """Where artifact `name` lives (paths are relative to verdict.json), or None when absent."""
    rel = verdict.artifacts.get(name)
    if not rel:
        return None
    path = Path(rel)
    if not path.is_absolute():
        if out_dir is None:
            return None
        path = Path(out_dir) / path
    return path if path.is_file() else None


def load_samples(verdict: Verdict, out_dir: Path | None, name: str = Artifact.SAMPLES) -> list[dict[str, Any]]:
    path = artifact_path(verdict, name, out_dir)
    return list(read_jsonl(path)) if path else []


def load_training_metrics(verdict: Verdict, out_dir: Path | None) -> list[dict[str, Any]]:
    """The GRPO metrics rows saved beside the verdict (check --after-grpo), in step order."""
    path = artifact_path(verdict, Artifact.TRAINING_METRICS, out_dir)
    return step_rows(path) if path else []


def row_id(row: dict[str, Any]) -> str:
    return str(row.get("example_id", row.get("id", "")))


def is_failure(row: dict[str, Any]) -> bool:
    return row.get("outcome", "correct" if row.get("correct") else "wrong") != "correct"


def stable_key(row: dict[str, Any]) -> str:
    """An order that depends on a row's identity only, so sampling-down is the same on every run."""
    ident = f"{row_id(row)}\x00{row.get('run', '')}\x00{row.get('index', '')}"
    return hashlib.sha1(ident.encode("utf-8")).hexdigest()


def split_on_token(text: str, token: str) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is_token) parts, so a renderer can highlight each occurrence."""
    if not token:
        return [(text, False)]
    parts: list[tuple[str, bool]] = []
    pos = 0
    for m in re.finditer(re.escape(token), text):
        if m.start() > pos:
            parts.append((text[pos : m.start()], False))
        parts.append((m.group(0), True))
        pos = m.end()
    if pos < len(text):
        parts.append((text[pos:], False))
    return parts


def token_rows(
    verdict: Verdict, token: str, out_dir: Path | None, ids: Iterable[str] = (), limit: int | None = None
) -> list[dict[str, Any]]:
    """Saved rows whose completion carries `token`; rows named in `ids` first. Each gets `artifact`."""
    wanted = set(ids)
    named, other = [], []
    for name in TEXT_ARTIFACTS:
        path = artifact_path(verdict, name, out_dir)
        if not path:
            continue
        for row in read_jsonl(path):
            if token in str(row.get("completion", "")):
                (named if row_id(row) in wanted else other).append({**row, "artifact": name})
    # One row per example first, so a short list shows as many different rows as it can.
    seen: set[str] = set()
    firsts, repeats = [], []
    for row in named + other:
        (repeats if row_id(row) in seen else firsts).append(row)
        seen.add(row_id(row))
    rows = firsts + repeats
    return rows if limit is None else rows[:limit]


def failing_samples(verdict: Verdict, check: CheckResult, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The graded samples behind a check's failure: rows its findings name, else every wrong sample."""
    ids = {i for f in check.findings for i in f.example_ids}
    ids.update(str(i) for i in check.metrics.get(CheckMetric.REGRESSED, []) or [])
    failing = [s for s in samples if is_failure(s)]
    if ids:
        failing = [s for s in failing if row_id(s) in ids]
    return sorted(failing, key=lambda s: (row_id(s), s.get("run", 0), s.get("index", 0)))


def sample_down(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most `limit` rows, chosen deterministically: one per (outcome, scenario) group first, then
    failures (up to 3/4), then any; returned in (example_id, run, index) order."""
    if len(rows) <= limit:
        return list(rows)
    ordered = sorted(rows, key=stable_key)
    chosen: dict[int, dict[str, Any]] = {}
    seen_groups: set[tuple[str, str]] = set()
    # Failures first, so a group's representative is a failing row where the group has one.
    for pool in ([r for r in ordered if is_failure(r)], ordered):
        for r in pool:
            group = (str(r.get("outcome")), str(r.get("scenario")))
            if group not in seen_groups and len(chosen) < limit:
                seen_groups.add(group)
                chosen[id(r)] = r
    # Then failures up to three quarters of the budget, the rest in stable order, so correct answers
    # still show for contrast.
    failures = [r for r in ordered if is_failure(r)]
    n_fail = sum(1 for r in chosen.values() if is_failure(r))
    for r in failures:
        if n_fail >= max(limit * 3 // 4, 1) or len(chosen) >= limit:
            break
        if id(r) not in chosen:
            chosen[id(r)] = r
            n_fail += 1
    for r in ordered + failures:
        if len(chosen) >= limit:
            break
        chosen.setdefault(id(r), r)
    return sorted(chosen.values(), key=lambda s: (row_id(s), s.get("run", 0), s.get("index", 0)))


def compare_verdicts(old: Verdict, new: Verdict, *, old_path: str | None = None) -> dict[str, Any]:
    """What changed from `old` to `new`: status, each check's status/headline, per-scenario accuracy,
    and which fingerprint parts differ. JSON-ready, stored in Verdict.compare."""
    old_checks = {c.id: c for c in old.checks}
    checks = []
    for c in new.checks:
        before = old_checks.pop(c.id, None)
        checks.append(
            {
                "id": c.id,
                "question": c.question,
                "old_status": before.status.value if before else None,
                "new_status": c.status.value,
                "old_headline": before.headline if before else None,
                "new_headline": c.headline,
                "changed": before is None or before.status != c.status or before.headline != c.headline,
            }
        )
    for c in old_checks.values():
        checks.append(
            {
                "id": c.id,
                "question": c.question,
                "old_status": c.status.value,
                "new_status": None,
                "old_headline": c.headline,
                "new_headline": None,
                "changed": True,
            }
        )
    fp_old, fp_new = old.fingerprint, new.fingerprint
    fp_changed = [k for k in ("task", "model", "sampling", "version") if getattr(fp_old, k) != getattr(fp_new, k)]
    fp_changed += [
        f"data.{k}" for k in sorted(set(fp_old.data) | set(fp_new.data)) if fp_old.data.get(k) != fp_new.data.get(k)
    ]
    scen_old = _scenario_accuracy(old)
    scen_new = _scenario_accuracy(new)
    scenarios = {s: {"old": scen_old.get(s), "new": scen_new.get(s)} for s in sorted(set(scen_old) | set(scen_new))}
    return {
        "old": {"path": old_path, "created_at": old.created_at, "status": old.status.value, "digest": fp_old.digest},
        "status": {"old": old.status.value, "new": new.status.value, "changed": old.status != new.status},
        "checks": checks,
        "fingerprint_changed": fp_changed,
        "per_scenario_accuracy": scenarios,
    }


def _scenario_accuracy(verdict: Verdict) -> dict[str, float]:
    check = find_check(verdict, CheckId.BASE_MODEL)
    per = (check.metrics.get(CheckMetric.PER_SCENARIO) if check else None) or {}
    return {
        str(s): float(v["accuracy"])
        for s, v in per.items()
        if isinstance(v, dict) and isinstance(v.get("accuracy"), (int, float))
    }
