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

from phasecheck.checks._scan import _MATH_SPAN, _OPERAND, _SPAN_SYMBOL, _TOKEN, TokenScanner  # noqa: E402

PROSE = ["First we read the table and note the values.", "Then we reason step by step about the light.",
         "The sun sets later in summer, so the hour is longer.", "We multiply, then check the units again.",
         "Using the given constant keeps the result consistent.", "Rounding to the nearest minute is enough."]
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
                tokens += sum(len(_SPAN_SYMBOL.findall(body)) for groups in _MATH_SPAN.findall(text) for body in groups if body)
            n += 1
    return time.perf_counter() - t0, tokens


def scan(path: Path, max_rate: float) -> tuple[float, list[dict], TokenScanner]:
    t0 = time.perf_counter()
    sc = TokenScanner(["m", "k"], max_tokens=100_000, max_ids=20)      # 'm' and 'k' as a vocabulary would ground them
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            text = d["completion"]
            m = ANSWER.search(text)
            sc.add(d["id"], text, d["prompt"], m is not None and m.group(1) == d["reference"])
    flagged = sc.flagged(max_rate, 3)
    return time.perf_counter() - t0, flagged, sc


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
            "rows": args.rows, "bytes": path.stat().st_size,
            "mean_chars": round(path.stat().st_size / max(1, args.rows)),
            "generate_s": round(gen_s, 2),
            "read_tokenize_s": round(base_s, 2), "tokens": n_tokens,
            "scan_s": round(scan_s, 2), "rows_per_s": round(args.rows / scan_s),
            "ratio_scan_to_read_tokenize": round(scan_s / base_s, 2),
            "peak_rss_mb": round(peak_mb, 1),
            "tracked_tokens": len(sc.stats), "undercount_bound": sc.undercount_bound,
            "flagged": [{k: f[k] for k in ("token", "kind", "rate", "n_rows", "position_consistency",
                                           "pass_rate_with", "pass_rate_without")} for f in flagged],
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
