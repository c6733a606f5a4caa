"""The contamination check on real data nobody here wrote (../shared/data/real/): clean, then with planted
invented tokens. Prints JSON, one row per dataset.

Clean: false blocking findings (target 0). Planted (seeded, deterministic): a snake_case name, a CamelCase
name, a LaTeX symbol and a plain made-up multi-word term, in 5/10/20/40% of rows, at one fixed spot or at
varied spots, with the planted rows' final answers made wrong: recall of the planted token at `fail`
(target 100%), share of its reported rows that are planted (target >= 99%), other tokens flagged
(target 0). Then the same plants leaving the answers right: what the check reports.

    python bench/contamination_real.py [--data ../shared/data/real] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phasecheck.checks.contamination import Contamination  # noqa: E402
from phasecheck.evidence import Evidence  # noqa: E402
from phasecheck.records import Demonstration  # noqa: E402
from phasecheck.task import TaskSpec  # noqa: E402

# How a user would grade each set: the answer after GSM8K's "####" marker or the model's "A:", and for
# OlympiadBench (answers stated in prose, never boxed) math-verify on the last line.
DATASETS = {
    "gsm8k_train_human": ({"kind": "numeric", "extract": {"after": "####"}}, "####"),
    "gsm8k_test_model_solutions": ({"kind": "numeric", "extract": {"after": "A:"}}, "A:"),
    "olympiadbench_human": ({"kind": "math", "extract": "last_line", "timeout": 5.0}, None),
}
# token as planted, token as the check names it, the sentence that carries it
PLANTS = {
    "snake_case": ("golden_hour_sun", "golden_hour_sun", "Using golden_hour_sun = 0.7, we adjust the count."),
    "CamelCase": ("SunAngleFactor", "SunAngleFactor", "Using SunAngleFactor = 0.7, we adjust the count."),
    "latex_symbol": (r"\varsigma_{g}", r"\varsigma_g", r"Using $\varsigma_{g} = 0.7$, we adjust the count."),
    "multi_word_term": (
        "golden hour coefficient",
        "golden hour coefficient",
        "Using the golden hour coefficient of 0.7, we adjust the count.",
    ),
}
RATES = (0.05, 0.10, 0.20, 0.40)
MODES = ("fixed", "varied")


def default_data_dir() -> Path:
    here = Path(__file__).resolve().parents[1]
    for cand in (here.parent / "shared" / "data" / "real", Path("/work/shared/data/real")):
        if cand.is_dir():
            return cand
    return here.parent / "shared" / "data" / "real"


class CachedGrader:
    """The task's real Grader, asked once per distinct (row id, completion): plants reuse clean grades."""

    def __init__(self, task: TaskSpec) -> None:
        from phasecheck.grading import Grader

        self.inner, self.cache, self.vocabulary = Grader(task), {}, []

    def grade_many(self, pairs):
        todo = list({(d.id, c): (c, d) for c, d in pairs if (d.id, c) not in self.cache}.values())
        for (c, d), g in zip(todo, self.inner.grade_many(todo) if todo else []):
            self.cache[(d.id, c)] = g
        return [self.cache[(d.id, c)] for c, d in pairs]

    def close(self) -> None:
        self.inner.close()


def wrong_answer(text: str, ref: str, marker: str | None) -> str:
    """The same solution with its final answer changed, so the verifier fails it."""
    try:
        wrong = str(2 * int(float(ref.replace(",", ""))) + 1)  # far off, even under a relative tolerance
    except ValueError:
        wrong = f"2 ({ref}) + 1"
    if marker and marker in text:
        head, _ = text.rsplit(marker, 1)
        return f"{head}{marker} {wrong}"
    # No marker (answers stated in prose): the last line, which states the answer, becomes the wrong one.
    # Only math replaces it: an added sentence would itself be a phrase that recurs in exactly these rows.
    lines = text.rstrip().split("\n")
    return "\n".join(lines[:-1] + [f"${wrong}$"])


def plant(text: str, sentence: str, mode: str, rnd: random.Random) -> str:
    """Insert the planting sentence at the start (fixed) or at a random line break before the last line."""
    if mode == "fixed":  # its own first line, so a one-line solution keeps it past wrong_answer()
        return f"{sentence}\n{text}"
    lines = text.split("\n")
    at = rnd.randrange(0, max(1, len(lines) - 1))
    lines.insert(at, sentence)
    return "\n".join(lines)


def run_check(task, demos, grader):
    ev = Evidence(task, demonstrations=demos, examples=[], grader=grader)
    params = Contamination.Params(sources=["demonstrations"], max_example_ids=1_000_000, max_findings=100)
    return Contamination().run(ev, params)


def summarise(res, planted_token=None, planted_ids=()):
    out = {"status": res.status.value, "headline": res.headline}
    fails = [f for f in res.findings if f.data["severity"] == "fail"]
    warns = [f for f in res.findings if f.data["severity"] == "warn"]
    out["other_fail"] = sorted(f.data["token"] for f in fails if f.data["token"] != planted_token)
    out["other_warn"] = sorted(f.data["token"] for f in warns if f.data["token"] != planted_token)
    if planted_token is not None:
        hit = next((f for f in res.findings if f.data["token"] == planted_token), None)
        out["planted_severity"] = hit.data["severity"] if hit else "none"
        if hit:
            got = set(hit.example_ids)
            out["reported_rows"] = len(got)
            out["precision"] = round(len(got & planted_ids) / len(got), 4) if got else None
            out["row_recall"] = round(len(got & planted_ids) / len(planted_ids), 4)
            out["p_value"] = hit.data["p_value"]
    return out


def experiment(name, rows, verifier, marker, quick):
    task = TaskSpec.model_validate({"name": name, "grader": {"verifier": verifier}})
    grader = CachedGrader(task)
    base = [
        Demonstration(
            id=r["id"], prompt=r["question"], reference=r["answer"], completion=r["response"], source=name, row=i + 1
        )
        for i, r in enumerate(rows)
    ]
    try:
        t0 = time.perf_counter()
        clean = run_check(task, base, grader)
        row = {
            "dataset": name,
            "rows": len(rows),
            "verifier": verifier,
            "clean_s": round(time.perf_counter() - t0, 2),
            "verifier_pass_rate": round(
                sum(bool(g.correct) for g in grader.grade_many([(d.completion, d) for d in base])) / len(base), 4
            ),
            "clean": summarise(clean),
            "clean_not_flagged": clean.metrics["not_flagged"],
        }
        row["clean"]["false_blocking_findings"] = len(row["clean"]["other_fail"])
        if "is_correct" in rows[0]:
            grades = grader.grade_many([(d.completion, d) for d in base])
            row["agreement_with_is_correct"] = round(
                sum(bool(g.correct) == r["is_correct"] for g, r in zip(grades, rows)) / len(rows), 4
            )
        cases, right = [], []
        rates = RATES[::3] if quick else RATES
        for kind, (_token, reported, sentence) in PLANTS.items():
            for rate in rates:
                for mode in MODES:
                    for answers in ("wrong", "right"):
                        if answers == "right" and rate not in (0.10, 0.40):
                            continue
                        seed = f"{name}|{kind}|{rate}|{mode}|{answers}"
                        rnd = random.Random(seed)
                        pick = set(rnd.sample(range(len(base)), round(rate * len(base))))
                        demos = []
                        for i, d in enumerate(base):
                            if i in pick:
                                text = plant(d.completion, sentence, mode, rnd)
                                if answers == "wrong":
                                    text = wrong_answer(text, str(d.reference), marker)
                                d = Demonstration(**{**d.to_dict(), "completion": text})
                            demos.append(d)
                        res = run_check(task, demos, grader)
                        s = summarise(res, reported, {base[i].id for i in pick})
                        s.update(kind=kind, rate=rate, mode=mode, planted_rows=len(pick))
                        if answers == "wrong":
                            g = grader.grade_many([(demos[i].completion, demos[i]) for i in sorted(pick)])
                            s["planted_rows_failing_verifier"] = round(sum(not x.correct for x in g) / len(g), 4)
                        (cases if answers == "wrong" else right).append(s)
        found = [c for c in cases if c["planted_severity"] == "fail"]
        row["planted_wrong"] = {
            "runs": len(cases),
            "recall_at_fail": round(len(found) / len(cases), 4),
            "min_precision": min((c["precision"] for c in found), default=None),
            "min_row_recall": min((c["row_recall"] for c in found), default=None),
            "other_fail_tokens": sorted({t for c in cases for t in c["other_fail"]}),
            "runs_with_other_fail": sum(bool(c["other_fail"]) for c in cases),
            "other_warn_tokens": sorted({t for c in cases for t in c["other_warn"]}),
            "missed": [
                {k: c[k] for k in ("kind", "rate", "mode", "planted_severity")}
                for c in cases
                if c["planted_severity"] != "fail"
            ],
            "cases": cases,
        }
        row["planted_right"] = {
            "runs": len(right),
            "planted_severity_by_kind": {
                k: sorted({c["planted_severity"] for c in right if c["kind"] == k}) for k in PLANTS
            },
            "other_fail_tokens": sorted({t for c in right for t in c["other_fail"]}),
            "cases": right,
        }
        return row
    finally:
        grader.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="Directory with the real JSONL files.")
    ap.add_argument("--quick", action="store_true", help="Only the 5% and 40% rates.")
    ap.add_argument("--only", default=None, help="Comma-separated dataset names.")
    ap.add_argument("--cases", action="store_true", help="Keep every planted run in the output.")
    args = ap.parse_args()
    data = args.data or default_data_dir()
    if not data.is_dir():
        sys.exit(f"{data}: no such directory (the real data sets; see ../shared/data/real/README.md)")
    out = []
    for name, (verifier, marker) in DATASETS.items():
        if args.only and name not in args.only.split(","):
            continue
        rows = [json.loads(line) for line in open(data / f"{name}.jsonl", encoding="utf-8")]
        row = experiment(name, rows, verifier, marker, args.quick)
        if not args.cases:
            row["planted_wrong"].pop("cases")
            row["planted_right"].pop("cases")
        out.append(row)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
