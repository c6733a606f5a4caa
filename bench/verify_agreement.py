"""Benchmark: our verifiers' grades against real labels (row agreement) and gold solutions' own answers.

Usage: python bench/verify_agreement.py [--data DIR] [--limit N] [--workers 2] [--timeout 5]; prints JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from collections import Counter
from pathlib import Path

SETS = {
    "gsm8k_test_model_solutions": ("numeric", "math"),
    "gsm8k_train_human": ("numeric", "math"),
    "olympiadbench_human": ("math",),
}
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d[\d.,e+-]*")


def data_dir(given: str | None) -> Path:
    for cand in [
        given,
        os.environ.get("PHASECHECK_REAL_DATA"),
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real",
        "/work/shared/data/real",
    ]:
        if cand and Path(cand, "gsm8k_train_human.jsonl").exists():
            return Path(cand)
    raise SystemExit("real data not found: pass --data DIR or set PHASECHECK_REAL_DATA")


def read(path: Path, limit: int) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return rows[:limit] if limit else rows


def failure_class(grade, text: str) -> str:
    """Where the answer was read from, the outcome, and its detail with quoted/numeric parts blanked."""
    try:
        from phasecheck.grading.extract import final_answer

        source = final_answer(text, 2000)[1]  # Math.Params().max_chars
    except ImportError:  # the code before final_answer existed
        source = "whole"
    return f"{source} -> {grade.outcome.value}: {_QUOTED.sub('_', grade.detail)[:90]}"


def grade_rows(rows: list[dict], kind: str, workers: int, timeout: float):
    from phasecheck.grading import Grader
    from phasecheck.records import Example
    from phasecheck.task import TaskSpec

    task = TaskSpec.model_validate(
        {"name": "agreement", "grader": {"verifier": {"kind": kind, "timeout": timeout}, "workers": workers}}
    )
    with Grader(task) as g:
        t = time.perf_counter()
        grades = g.grade_many(
            [(r["response"], Example(id=r["id"], prompt=r["question"], reference=r["answer"])) for r in rows]
        )
        return grades, time.perf_counter() - t, g.pool.stats() if hasattr(g.pool, "stats") else {}


def example(row: dict, grade) -> dict:
    return {
        "id": row["id"],
        "reference": row["answer"],
        "answer": (grade.answer or "")[:80],
        "outcome": grade.outcome.value,
        "detail": grade.detail[:120],
    }


def labelled(rows: list[dict], kind: str, args) -> dict:
    grades, secs, pool = grade_rows(rows, kind, args.workers, args.timeout)
    pairs = [(g.correct is True, bool(r["is_correct"])) for g, r in zip(grades, rows)]
    misses = [example(r, g) for (ours, lab), g, r in zip(pairs, grades, rows) if ours != lab]
    return {
        "rows": len(rows),
        "agree": len(rows) - len(misses),
        "agreement": round(1 - len(misses) / len(rows), 4),
        "ours_correct": sum(o for o, _ in pairs),
        "labelled_correct": sum(lab for _, lab in pairs),
        "false_correct": sum(o and not lab for o, lab in pairs),
        "false_wrong": sum(lab and not o for o, lab in pairs),
        "outcomes": dict(Counter(g.outcome.value for g in grades)),
        "seconds": round(secs, 2),
        "pool": pool,
        "disagreements": misses[: args.examples],
    }


def marker(text: str) -> str | None:
    """How a solution marks its final answer, by a rule that holds for any dataset: a box, an answer line
    ("The answer is", "Final answer:", "####", "A:"), or a bold result in its last sentence; None when unmarked."""
    import re

    from phasecheck.grading.extract import answer_line, boxed_spans

    if boxed_spans(text):
        return "boxed"
    if answer_line(text):
        return "answer_line"
    last = re.split(r"(?<=[.!?])\s+(?=[A-Z])|\n\s*\n", text.strip())[-1]
    return "bold_last_sentence" if re.search(r"\\(?:mathbf|textbf|boldsymbol)\s*\{|\*\*\S", last) else None


def gold(rows: list[dict], kind: str, args) -> dict:
    grades, secs, pool = grade_rows(rows, kind, args.workers, args.timeout)
    readable = [(g, r) for g, r in zip(grades, rows) if not (g.outcome.value == "error" and "reference" in g.detail)]
    passed = sum(g.correct is True for g, _ in readable)
    fails = Counter(failure_class(g, r["response"]) for g, r in readable if g.correct is not True)
    marks: dict = {}
    for g, r in readable:
        m = marks.setdefault(str(marker(r["response"])), {"rows": 0, "passing": 0, "failure_classes": Counter()})
        m["rows"] += 1
        m["passing"] += g.correct is True
        if g.correct is not True:
            m["failure_classes"][failure_class(g, r["response"])] += 1
    for m in marks.values():
        m["pass_share"] = round(m["passing"] / m["rows"], 4)
        m["failure_classes"] = dict(m["failure_classes"].most_common())
    return {
        "rows": len(rows),
        "references_read": len(readable),
        "passing": passed,
        "pass_share": round(passed / len(readable), 4) if readable else None,
        "unreadable_references": len(rows) - len(readable),
        "by_answer_marker": marks,
        "outcomes": dict(Counter(g.outcome.value for g in grades)),
        "failure_classes": dict(fails.most_common()),
        "seconds": round(secs, 2),
        "pool": pool,
        "failures": [example(r, g) for g, r in readable if g.correct is not True][: args.examples],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="Directory holding the real .jsonl files.")
    ap.add_argument("--limit", type=int, default=0, help="Rows per file (0 = all).")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--examples", type=int, default=5, help="Disagreements/failures listed per set.")
    ap.add_argument("--only", default=None, help="One set name.")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    root = data_dir(args.data)
    out: dict = {"data": str(root)}
    for name, kinds in SETS.items():
        if args.only and name != args.only:
            continue
        rows = read(root / f"{name}.jsonl", args.limit)
        judge = labelled if "is_correct" in rows[0] else gold
        out[name] = {kind: judge(rows, kind, args) for kind in kinds}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
