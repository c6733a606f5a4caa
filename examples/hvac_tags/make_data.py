"""Write the HVAC tag example data: the tag table, eval prompts for seven scenarios, SFT demonstrations,
and a replay samples file from a model that answers reverse lookups with verbose BACnet-style names.

Deterministic (fixed seeds, sorted keys). Usage: python make_data.py [--out DIR]   (default: ./data)
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from phasecheck.atomic import atomic_write_text
from phasecheck.jsonl import write_jsonl

SEED = 7
RUNS, N, SAMPLING_SEED = 2, 2, 0  # must match sampling: in tasks/hvac_tags.yaml
REPLAY_MODEL = "replay:verbose-bacnet-demo"
ANSWER = "End with one line `Answer: ...`."

# (tag, description, physical?) -- physical: a wired I/O point (sensor, status, command output);
# virtual: a software value (setpoint, mode, calculated).
TAGS = [
    ("SPS", "Supply Air Static Pressure", True),
    ("SPS-SP", "Supply Air Static Pressure Setpoint", False),
    ("DAT", "Discharge Air Temperature", True),
    ("DAT-SP", "Discharge Air Temperature Setpoint", False),
    ("RAT", "Return Air Temperature", True),
    ("MAT", "Mixed Air Temperature", True),
    ("OAT", "Outside Air Temperature", True),
    ("OAH", "Outside Air Humidity", True),
    ("RAH", "Return Air Humidity", True),
    ("ZN-T", "Zone Temperature", True),
    ("ZN-SP", "Zone Temperature Setpoint", False),
    ("ZN-2_RHC", "Zone 2 Reheat Coil Valve Command", True),
    ("ZN-2_DPR", "Zone 2 Damper Position Command", True),
    ("ZN-2_CFM", "Zone 2 Airflow", True),
    ("ZN-2_CFM-SP", "Zone 2 Airflow Setpoint", False),
    ("SF-S", "Supply Fan Status", True),
    ("SF-C", "Supply Fan Start Stop Command", True),
    ("SF-VFD", "Supply Fan Speed Command", True),
    ("RF-S", "Return Fan Status", True),
    ("RF-VFD", "Return Fan Speed Command", True),
    ("EF-S", "Exhaust Fan Status", True),
    ("OAD", "Outside Air Damper Command", True),
    ("RAD", "Return Air Damper Command", True),
    ("EAD", "Exhaust Air Damper Command", True),
    ("CHWV", "Chilled Water Valve Command", True),
    ("HWV", "Hot Water Valve Command", True),
    ("CHWST", "Chilled Water Supply Temperature", True),
    ("CHWRT", "Chilled Water Return Temperature", True),
    ("HWST", "Hot Water Supply Temperature", True),
    ("HWRT", "Hot Water Return Temperature", True),
    ("CHWP-S", "Chilled Water Pump Status", True),
    ("HWP-S", "Hot Water Pump Status", True),
    ("CHW-DP", "Chilled Water Differential Pressure", True),
    ("FLT-DP", "Filter Differential Pressure", True),
    ("FRZ", "Freeze Stat Alarm", True),
    ("SMK", "Smoke Detector Alarm", True),
    ("OCC", "Occupancy Mode", False),
    ("ECON", "Economizer Enable", False),
    ("MAT-LL", "Mixed Air Low Limit Setpoint", False),
    ("OA-CFM", "Outside Air Flow", True),
    ("OA-CFM-SP", "Minimum Outside Air Flow Setpoint", False),
    ("ZN-CO2", "Zone CO2 Concentration", True),
    ("SPS-RST", "Static Pressure Reset Request", False),
    ("HTG-DMD", "Heating Demand", False),
    ("CLG-DMD", "Cooling Demand", False),
    ("SF-HRS", "Supply Fan Run Hours", False),
]
DESC = {t: d for t, d, _ in TAGS}

# Eval items, chosen by hand so each has one checkable answer: 4 per scenario, and 8 reverse lookups
# (the scenario the replayed model gets wrong, so its failure moves the overall accuracy too).
REVERSE = ["SPS", "DAT", "CHWV", "ZN-2_CFM", "OA-CFM", "SF-VFD", "ZN-CO2", "MAT-LL"]
DIRECT = ["MAT", "OAD", "FLT-DP", "HWST"]
PHYS_VIRT = ["OCC", "SF-S", "DAT-SP", "ZN-2_DPR"]
UNKNOWN = ["ZN-9_XQR", "BLR-7_FLM", "AHU-Q_TRB", "CT-3_ICE"]
TYPOS = [("ZN2_RHC", "ZN-2_RHC"), ("CHWTS", "CHWST"), ("SPS_SP", "SPS-SP"), ("FLTDP", "FLT-DP")]
CHOICE = [
    ("MAT", ["RAT", "MAT", "OAT", "DAT"]),
    ("HWV", ["HWV", "CHWV", "OAD", "EAD"]),
    ("SF-S", ["SF-C", "SF-VFD", "RF-S", "SF-S"]),
    ("ZN-SP", ["ZN-T", "ZN-SP", "DAT-SP", "SPS-SP"]),
]
CONTEXT = [
    (
        "AHU-1 discharge air is 4 F warm while the cooling coil valve is already fully open. Which point "
        "would you trend next to see whether the plant is delivering cold water?",
        "CHWST",
        ["chilled water", "supply temperature"],
        "The valve is wide open, so the coil is starved: check the chilled water supply temperature.",
    ),
    (
        "Zone 2 is cold in heating season and its airflow is at setpoint. Which point shows whether the "
        "reheat valve is being commanded open?",
        "ZN-2_RHC",
        ["reheat", "valve"],
        "Airflow is fine, so look at the reheat coil valve command for zone 2.",
    ),
    (
        "The supply fan has a start command but duct pressure stays near zero. Which point proves the fan "
        "is actually running?",
        "SF-S",
        ["status", "running"],
        "A start command is not proof; the supply fan status shows whether it is running.",
    ),
    (
        "Filters were changed last month but the supply fan speed creeps up every week. Which point "
        "tells you how loaded the filters are?",
        "FLT-DP",
        ["filter", "differential pressure"],
        "Rising fan speed with a loading filter: the filter differential pressure shows it.",
    ),
]


def verbose_name(tag: str, style: int) -> str:
    """The BACnet-style object name a generic model invents instead of the site's short tag."""
    words = DESC[tag].split()
    if style == 0:
        suffix = "Sensor" if "Command" not in words else ""
        return "_".join(words + ([suffix] if suffix else []))
    return f"AV-{101 + sum(map(ord, tag)) % 97} {' '.join(words).replace('Temperature', 'Temp')}"


def eval_rows() -> list[dict]:
    rows = []

    def add(scenario, prompt, reference, **extra):
        rows.append(
            {
                "id": f"{scenario}-{sum(r['scenario'] == scenario for r in rows) + 1}",
                "scenario": scenario,
                "prompt": prompt,
                "reference": reference,
                **extra,
            }
        )

    for t in REVERSE:
        add("reverse_lookup", f"Which short site tag names the point '{DESC[t]}'? Give the tag only. {ANSWER}", t)
    for t in DIRECT:
        add("direct_lookup", f"What does the site tag {t} stand for? {ANSWER}", DESC[t])
    for t, opts in CHOICE:
        listed = " ".join(f"{chr(65 + i)}) {o}" for i, o in enumerate(opts))
        add(
            "multiple_choice",
            f"Which tag is the {DESC[t]}? {listed}. Answer with the letter. {ANSWER}",
            chr(65 + opts.index(t)),
            choices=opts,
        )
    phys = {t: p for t, _, p in TAGS}
    for t in PHYS_VIRT:
        add(
            "physical_vs_virtual",
            f"Is the point {t} ({DESC[t]}) a physical I/O point or a virtual point? "
            f"Answer physical or virtual. {ANSWER}",
            "physical" if phys[t] else "virtual",
        )
    for t in UNKNOWN:
        add(
            "unknown_tag",
            f"What does the site tag {t} stand for? If it is not a tag of this site, say so. {ANSWER}",
            None,
        )
    for typo, t in TYPOS:
        add(
            "typo_robustness",
            f"A technician typed the tag {typo}, which may contain a typo. Which site tag did they mean? {ANSWER}",
            t,
        )
    for prompt, t, kw, _ in CONTEXT:
        add("context_reasoning", f"{prompt} Name the site tag. {ANSWER}", t, keywords=kw)
    return rows


def good_answer(row: dict) -> str:
    s, ref = row["scenario"], row["reference"]
    if s == "unknown_tag":
        tag = row["prompt"].split("site tag ")[1].split("?")[0]
        return f"I do not recognize {tag}; it is not a known tag of this site.\nAnswer: unknown tag"
    if s == "context_reasoning":
        why = next(c[3] for c in CONTEXT if c[1] == ref)
        return f"{why}\nAnswer: {ref}"
    return f"Answer: {ref}"


def replay_rows(evals: list[dict]) -> list[dict]:
    """A model that knows the table but names points the BACnet way on reverse lookups."""
    rng = random.Random(SEED)
    out = []
    for row in evals:
        for run in range(RUNS):
            for index in range(N):
                s = row["scenario"]
                roll = rng.random()
                if s == "reverse_lookup":
                    # The short tag only in the last sample of every other prompt: accuracy 1/8.
                    right = (run, index) == (RUNS - 1, N - 1) and int(row["id"].rsplit("-", 1)[1]) % 2 == 1
                    text = (
                        f"Answer: {row['reference']}"
                        if right
                        else f"Answer: {verbose_name(row['reference'], int(roll * 10) % 2)}"
                    )
                elif roll < 0.15 and s == "direct_lookup":
                    text = f"I think it might be the {row['reference']}.\nAnswer: {row['reference']}"
                elif roll < 0.12 and s == "typo_robustness":
                    text = "Answer: ZN-T"
                else:
                    text = good_answer(row)
                out.append(
                    {
                        "example_id": row["id"],
                        "run": run,
                        "index": index,
                        "seed": SAMPLING_SEED + run * N + index,
                        "completion": text,
                        "finish_reason": "stop",
                        "n_tokens": len(text.split()) + text.count("_"),
                        "model": REPLAY_MODEL,
                        "engine": "replay",
                    }
                )
    return out


def train_rows() -> list[dict]:
    """Demonstrations: a direct and a reverse lookup and a physical/virtual call per tag; 3 rows carry
    the verbose BACnet names (the rows a reviewer should catch)."""
    rows = []
    for t, d, phys in TAGS:
        rows.append(
            {
                "id": f"train-direct-{t}",
                "scenario": "direct_lookup",
                "reference": d,
                "prompt": f"What does the site tag {t} stand for? {ANSWER}",
                "completion": f"Answer: {d}",
            }
        )
        rows.append(
            {
                "id": f"train-reverse-{t}",
                "scenario": "reverse_lookup",
                "reference": t,
                "prompt": f"Which short site tag names the point '{d}'? Give the tag only. {ANSWER}",
                "completion": f"Answer: {t}",
            }
        )
        kind = "physical" if phys else "virtual"
        rows.append(
            {
                "id": f"train-pv-{t}",
                "scenario": "physical_vs_virtual",
                "reference": kind,
                "prompt": f"Is the point {t} ({d}) a physical I/O point or a virtual point? "
                f"Answer physical or virtual. {ANSWER}",
                "completion": f"Answer: {kind}",
            }
        )
    eval_prompts = {r["prompt"] for r in eval_rows()}
    rows = [r for r in rows if r["prompt"] not in eval_prompts]  # no eval prompt leaks into training
    for i, t in enumerate(["RAT", "HWV", "OAT"]):
        r = next(r for r in rows if r["id"] == f"train-reverse-{t}")
        r["completion"] = f"Answer: {verbose_name(t, i % 2)}"
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    evals = eval_rows()
    files = {
        "tags.jsonl": [{"tag": t, "description": d, "kind": "physical" if p else "virtual"} for t, d, p in TAGS],
        "eval.jsonl": evals,
        "train.jsonl": train_rows(),
        "samples_verbose_bacnet.jsonl": replay_rows(evals),
    }
    for name, rows in files.items():
        write_jsonl(args.out / name, rows)
        print(f"{args.out / name}: {len(rows)} rows")
    # Known terms: every tag and every description (direct lookups answer with a description).
    vocab = atomic_write_text(args.out / "vocabulary.txt", "".join(f"{t}\n{d}\n" for t, d, _ in TAGS))
    print(f"{vocab}: {2 * len(TAGS)} terms")


if __name__ == "__main__":
    main()
