"""Benchmark: our `math` verifier against the verdicts in Math-Verify's own test suite, read from a checkout.

Usage: python bench/verify_mathverify_suite.py --suite PATH. Cases are read with `ast`; nothing of theirs is run."""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

_EXPECTED = ("expected", "result")
_OPTIONS = {"precision": "float_rounding", "strict": "strict", "allow_set_relation_comp": "allow_set_relation_comp"}


_SKIP = object()


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _SKIP


def _procedure(fn: ast.FunctionDef) -> tuple[list[str] | None, dict, dict] | None:
    """How a test function calls the library: (match_types or None for parse's default, constant verify
    options, options taken from a parameter) from its `compare_strings(...)` or `verify(parse(..), parse(..))`."""
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "compare_strings":
            consts, params, types = {}, {}, ["latex", "expr"]
            for kw in node.keywords:
                if kw.arg == "match_types":
                    types = _literal(kw.value)
                elif kw.arg in _OPTIONS and isinstance(kw.value, ast.Name):
                    params[kw.arg] = kw.value.id
                elif kw.arg in _OPTIONS:
                    consts[kw.arg] = _literal(kw.value)
            return types, consts, params
        if node.func.id == "verify" and all(
            isinstance(a, ast.Call) and getattr(a.func, "id", "") == "parse" for a in node.args
        ):
            return None, {}, {}
    return None


def read_suite(root: Path) -> tuple[list[dict], Counter]:
    """Every parametrized (gold, pred, expected) case in root/tests/*.py, with how its test calls the library."""
    cases, skipped = [], Counter()
    for path in sorted((root / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            for deco in fn.decorator_list:
                if not (
                    isinstance(deco, ast.Call)
                    and getattr(deco.func, "attr", "") == "parametrize"
                    and len(deco.args) >= 2
                ):
                    continue
                names = _literal(deco.args[0])
                names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
                exp = next((n for n in _EXPECTED if n in names), None)
                proc = _procedure(fn)
                if "gold" not in names or "pred" not in names or exp is None or proc is None:
                    skipped[f"{path.name}::{fn.name} (not a gold/pred/expected comparison)"] += 1
                    continue
                types, consts, params = proc
                rows = deco.args[1].elts if isinstance(deco.args[1], (ast.List, ast.Tuple)) else []
                for i, row in enumerate(rows):
                    values = _literal(row)
                    if values is _SKIP or not isinstance(values, tuple) or len(values) != len(names):
                        skipped[f"{path.name}::{fn.name} (a case that is not a literal)"] += 1
                        continue
                    case = dict(zip(names, values))
                    opts = dict(consts)
                    opts.update({k: case[v] for k, v in params.items() if v in case})
                    cases.append(
                        {
                            "test": f"{path.name}::{fn.name}[{i}]",
                            "gold": case["gold"],
                            "pred": case["pred"],
                            "expected": int(case[exp]),
                            "match_types": types,
                            "options": opts,
                        }
                    )
    return cases, skipped


def theirs(case: dict) -> int | None:
    """The installed math_verify's verdict, called as the test calls it (None when it raises)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    o = case["options"]
    try:
        if case["match_types"] is None:
            gold, pred = parse(case["gold"]), parse(case["pred"])
        else:
            targets = [
                LatexExtractionConfig(boxed_match_priority=0) if t == "latex" else ExprExtractionConfig()
                for t in case["match_types"]
            ]
            gold, pred = parse(case["gold"], targets), parse(case["pred"], targets)
        kwargs = {
            "float_rounding": o.get("precision", 6),
            "strict": o.get("strict", True),
            "allow_set_relation_comp": o.get("allow_set_relation_comp", False),
        }
        return int(verify(gold, pred, **kwargs))
    except Exception:  # noqa: BLE001 - a library crash is a case that does not reproduce
        return None


def ours(cases: list[dict], extract: str | None, workers: int, timeout: float) -> list:
    """Our Grades for every case, one Grader per distinct set of verifier options."""
    from phasecheck.grading import Grader
    from phasecheck.records import Example
    from phasecheck.task import TaskSpec

    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[tuple(sorted((_OPTIONS[k], v) for k, v in c["options"].items()))].append(i)
    out: list = [None] * len(cases)
    for opts, idx in groups.items():
        verifier = {"kind": "math", "timeout": timeout, **dict(opts)}
        if extract:
            verifier["extract"] = extract
        task = TaskSpec.model_validate(
            {"name": "mathverify-suite", "grader": {"verifier": verifier, "workers": workers}}
        )
        with Grader(task) as g:
            grades = g.grade_many(
                [(cases[i]["pred"], Example(id=str(i), prompt="", reference=cases[i]["gold"])) for i in idx]
            )
        for i, grade in zip(idx, grades):
            out[i] = grade
    return out


def disagreement_class(case: dict, grade) -> str:
    """What kind of miss: our verdict against theirs, and where our reading went."""
    from phasecheck.grading.extract import boxed_spans

    ours_ok = grade.correct is True
    kind = (
        "false correct"
        if ours_ok
        else ("false wrong" if grade.outcome.value == "wrong" else f"not judged ({grade.outcome.value})")
    )
    first = grade.detail.split(";")[0]
    how = "fast path" if first.startswith("same ") or (" != " in first and "reference" not in first) else "math-verify"
    if grade.outcome.value == "error" and "reference" in grade.detail:
        how = "reference unread"
    elif grade.answer is None:
        how = "nothing extracted"
    boxes = "boxed" if boxed_spans(case["pred"]) else "no box"
    return f"{kind} / {how} / {boxes}"


def agreement(cases: list[dict], grades: list, limit: int) -> dict:
    miss = [(c, g) for c, g in zip(cases, grades) if (g.correct is True) != bool(c["expected"])]
    classes: dict[str, list] = defaultdict(list)
    for c, g in miss:
        classes[disagreement_class(c, g)].append(
            {
                "test": c["test"],
                "gold": c["gold"][:100],
                "pred": c["pred"][:160],
                "expected": c["expected"],
                "answer": (g.answer or "")[:100],
                "outcome": g.outcome.value,
                "detail": g.detail[:140],
            }
        )
    return {
        "cases": len(cases),
        "agree": len(cases) - len(miss),
        "agreement": round(1 - len(miss) / len(cases), 4) if cases else None,
        "outcomes": dict(Counter(g.outcome.value for g in grades)),
        "disagreements_by_class": {
            k: {"count": len(v), "cases": v[:limit]} for k, v in sorted(classes.items(), key=lambda kv: -len(kv[1]))
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default=None, help="A checkout of github.com/huggingface/Math-Verify.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--examples", type=int, default=50, help="Cases listed per disagreement class.")
    ap.add_argument("--all", action="store_true", help="Also grade cases math_verify does not reproduce.")
    args = ap.parse_args()
    if not args.suite:
        print(
            "skipped: no Math-Verify checkout given; pass --suite PATH "
            "(git clone https://github.com/huggingface/Math-Verify PATH)",
            file=sys.stderr,
        )
        return
    root = Path(args.suite)
    if not (root / "tests").is_dir():
        raise SystemExit(f"{root}/tests not found: --suite must be a Math-Verify checkout")
    logging.disable(logging.WARNING)
    from importlib.metadata import version

    import math_verify

    cases, skipped = read_suite(root)
    t = time.perf_counter()
    for c in cases:
        c["theirs"] = theirs(c)
    reproduced = [c for c in cases if args.all or c["theirs"] == c["expected"]]
    boxed = [c for c in reproduced if "\\boxed" in c["pred"] or "\\fbox" in c["pred"]]
    out = {
        "suite": str(root),
        "math_verify": version("math-verify"),
        "math_verify_path": os.path.dirname(math_verify.__file__),
        "cases_read": len(cases),
        "cases_skipped": dict(skipped),
        "reproduced_by_math_verify": sum(c["theirs"] == c["expected"] for c in cases),
        "not_reproduced": [
            {
                "test": c["test"],
                "gold": c["gold"][:80],
                "pred": c["pred"][:80],
                "expected": c["expected"],
                "math_verify": c["theirs"],
            }
            for c in cases
            if c["theirs"] != c["expected"]
        ],
        "by_file": dict(Counter(c["test"].split("::")[0] for c in reproduced)),
        "default": agreement(reproduced, ours(reproduced, None, args.workers, args.timeout), args.examples),
        "extract_boxed_all": agreement(reproduced, ours(reproduced, "boxed", args.workers, args.timeout), 0),
        "extract_boxed_on_boxed_predictions": agreement(
            boxed, ours(boxed, "boxed", args.workers, args.timeout), args.examples
        ),
        "seconds": round(time.perf_counter() - t, 1),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
