"""Write the arithmetic example data: single-digit additions and subtractions answered as "a op b = N".

A domain SmolLM2-135M-Instruct gets right only some of the time (GRPO has a signal to learn from).
Deterministic (fixed seed, sorted keys). Usage: python make_data.py [--out DIR]   (default: ./data)
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from phasecheck.jsonl import write_jsonl

SEED = 1234
N_EVAL = 24
N_TRAIN = 60
FORMAT = "Reply with one line: the equation with its result."


def all_items() -> list[tuple[int, str, int]]:
    """Every a+b and a-b over single digits (a-b only when not negative): (a, op, b)."""
    items = [(a, "+", b) for a in range(10) for b in range(10)]
    items += [(a, "-", b) for a in range(10) for b in range(10) if a >= b]
    return items


def row(i: int, prefix: str, a: int, op: str, b: int) -> dict:
    value = a + b if op == "+" else a - b
    return {
        "id": f"{prefix}-{i:03d}",
        "prompt": f"What is {a} {op} {b}? {FORMAT}",
        "reference": str(value),
        "scenario": "addition" if op == "+" else "subtraction",
    }


def build() -> dict[str, list[dict]]:
    items = all_items()
    random.Random(SEED).shuffle(items)
    evals = [row(i, "arith-eval", *it) for i, it in enumerate(items[:N_EVAL])]
    train = []
    for i, it in enumerate(items[N_EVAL : N_EVAL + N_TRAIN]):
        r = row(i, "arith-train", *it)
        r["completion"] = f"{it[0]} {it[1]} {it[2]} = {r['reference']}"
        train.append(r)
    return {"eval.jsonl": evals, "train.jsonl": train}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in build().items():
        write_jsonl(args.out / name, rows)
        print(f"{args.out / name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
