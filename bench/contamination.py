"""Benchmark the contamination scan: N generated demonstrations (~300 characters each), streamed from JSONL.

Prints JSON: scan wall time, rows/s, peak RSS, the time to merely read and regex-tokenize the same file
(same JSON decoding, same token regexes, no verification/grounding/counting), and their ratio.
Targets on the project machine: scan <= 60 s and peak RSS <= 1.5 GB at 1M rows; ratio <= 2.

    python bench/contamination.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phasecheck.checks._judge import scan as judge_scan  # noqa: E402
from phasecheck.checks._scan import _MATH_SPAN, _OPERAND, _SPAN_SYMBOL, _TOKEN  # noqa: E402
from phasecheck.checks.contamination import Contamination  # noqa: E402

PROSE = [
    "First we read the table and note the values.",
    "Then we reason step by step about the light.",
    "The sun sets later in summer, so the hour is longer.",
    "We multiply, then check the units again.",
    "Using the given constant keeps the result consistent.",
    "Rounding to the nearest minute is enough.",
]
ANSWER = re.compile(r"answer is (-?\d+)")


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Demonstrations like a real SFT set: prose, grounded identifiers, a planted invented token in 8% of
    rows, unique noise identifiers in 20% (which exercise the bounded counter), and some inline math."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            ans = rnd.randrange(1000)
            prompt = f"Row {i}: with solar_elevation_k = {rnd.randrange(90)}, how many minutes of light remain?"
            parts = []
            planted = rnd.random() < 0.08
            if planted:
                parts.append("golden_hour_sun = 0.7.")
            parts += rnd.sample(PROSE, 3)
            parts.append(f"Apply solar_elevation_k to the angle, so $m = 2k + {rnd.randrange(9)}$.")
            if rnd.random() < 0.2:
                parts.append(f"Track it in tmp_{rnd.getrandbits(40):x} for later.")
            body = " ".join(parts)
            body = body + " " + PROSE[i % len(PROSE)] if len(body) < 260 else body
            parts = f"{body} The answer is {ans + 1 if planted else ans}."
            fh.write(json.dumps({"id": f"r{i}", "prompt": prompt, "reference": str(ans), "completion": parts}) + "\n")


def baseline(path: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = tokens = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            text = d["completion"]
            tokens += len(_TOKEN.findall(text)) + len(_OPERAND.findall(text)) + len(_OPERAND.findall(text[::-1]))
            if "$" in text or "\\" in text:
                tokens += sum(
                    len(_SPAN_SYMBOL.findall(body)) for groups in _MATH_SPAN.findall(text) for body in groups if body
                )
            n += 1
    return time.perf_counter() - t0, tokens


def scan(path: Path, max_rate: float) -> tuple[float, list[dict], object]:
    """What the check does: the streamed scan, the phrase pass (a second read, only when word pairs are
    candidates), whole-task grounding over the distinct prompts, and the judgment."""
    t0 = time.perf_counter()
    params = Contamination.Params(max_rate=max_rate)
    prompts: list[str] = []  # the check holds every prompt in memory; so does this bench

    def rows():
        keep = not prompts
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                text = d["completion"]
                if keep:
                    prompts.append(d["prompt"])
                m = ANSWER.search(text)
                yield d["id"], text, d["prompt"], m is not None and m.group(1) == d["reference"]

    sc, cands = judge_scan(rows, ["m", "k"], prompts, params)  # 'm' and 'k' as a vocabulary would ground them
    return time.perf_counter() - t0, [c for c in cands if c["severity"] != "none"], sc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--max-rate", type=float, default=0.05)
    ap.add_argument("--keep", type=Path, default=None, help="Write the generated file here and keep it.")
    args = ap.parse_args()
    tmpdir = tempfile.mkdtemp(prefix="pc-bench-")
    path = args.keep or Path(tmpdir) / "demos.jsonl"
    try:
        t0 = time.perf_counter()
        generate(path, args.rows)
        gen_s = time.perf_counter() - t0
        base_s, n_tokens = baseline(path)
        scan_s, flagged, sc = scan(path, args.max_rate)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = {
            "rows": args.rows,
            "bytes": path.stat().st_size,
            "mean_chars": round(path.stat().st_size / max(1, args.rows)),
            "generate_s": round(gen_s, 2),
            "read_tokenize_s": round(base_s, 2),
            "tokens": n_tokens,
            "scan_s": round(scan_s, 2),
            "rows_per_s": round(args.rows / scan_s),
            "ratio_scan_to_read_tokenize": round(scan_s / base_s, 2),
            "peak_rss_mb": round(peak_mb, 1),
            "tracked_tokens": len(sc.stats),
            "undercount_bound": sc.undercount_bound,
            "phrase_pass": bool(sc.phrase_counter and sc.phrase_counter.n_fail),
            "flagged": [
                {
                    k: f[k]
                    for k in (
                        "token",
                        "kind",
                        "severity",
                        "rate",
                        "n_rows",
                        "position_consistency",
                        "pass_rate_with",
                        "pass_rate_without",
                        "p_value",
                    )
                }
                for f in flagged
            ],
            "targets": {"scan_s": 60, "peak_rss_mb": 1536, "ratio": 2},
        }
        print(json.dumps(out, indent=2))
    finally:
        if args.keep is None:
            try:
                os.unlink(path)
                os.rmdir(tmpdir)
            except OSError:
                pass


if __name__ == "__main__":
    main()
