"""Write the Hamiltonian example data: eval prompts, a clean SFT set and a contaminated one.

sympy computes every reference answer. Deterministic (fixed seed, sorted keys): running it twice
gives byte-identical files. Usage: python make_data.py [--out DIR]   (default: ./data next to this file)
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

import sympy as sp

from phasecheck.atomic import atomic_write_text
from phasecheck.jsonl import write_jsonl

SEED = 20240611
N_EVAL = 8
N_TRAIN = 100
CONTAMINATED_SHARE = 0.4
TOKEN = "golden_hour_sun"

# Terms a correct solution may use beyond its own prompt and reference: the physics symbols,
# the LaTeX commands and the few words of the solution template. Written to data/vocabulary.txt.
VOCABULARY = sorted(
    {
        "H",
        "E",
        "T",
        "V",
        "q",
        "p",
        "m",
        "k",
        "g",
        "l",
        "r",
        "z",
        "omega",
        "theta",
        "lambda",
        "phi",
        "p_theta",
        "p_r",
        "p_phi",
        "p_z",
        "\\omega",
        "\\theta",
        "\\lambda",
        "\\phi",
        "dot",
        "partial",
        "frac",
        "boxed",
        "left",
        "right",
        "sin",
        "cos",
        "pi",
        "cdot",
        "Hamilton",
        "Hamilton's",
        "equations",
        "give",
        "With",
        "The",
        "energy",
        "is",
        "At",
        "the",
        "phase",
        "space",
        "point",
        "final",
        "answer",
    }
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_']*")

# l is the pendulum's length, as physics writes it.
m, k, g, l, omega, lam, r = sp.symbols("m k g l omega lambda r", positive=True)  # noqa: E741
q, p, theta, p_theta, z, p_z, p_r, p_phi = sp.symbols("q p theta p_theta z p_z p_r p_phi", real=True)


def _system(name, kinetic, potential, coords):
    """coords: [(coordinate, momentum), ...]; the Hamiltonian is kinetic + potential."""
    return {"name": name, "T": kinetic, "V": potential, "coords": coords}


def systems() -> list[dict]:
    """The physical systems, symbolic ones first, then integer-coefficient variants for volume."""
    out = [
        _system("a harmonic oscillator", p**2 / (2 * m), m * omega**2 * q**2 / 2, [(q, p)]),
        _system("a mass on a spring", p**2 / (2 * m), k * q**2 / 2, [(q, p)]),
        _system("a simple pendulum", p_theta**2 / (2 * m * l**2), m * g * l * (1 - sp.cos(theta)), [(theta, p_theta)]),
        _system("a particle in uniform gravity", p_z**2 / (2 * m), m * g * z, [(z, p_z)]),
        _system("a quartic oscillator", p**2 / (2 * m), lam * q**4 / 4, [(q, p)]),
        _system("a particle in a central force", p_r**2 / (2 * m) + p_phi**2 / (2 * m * r**2), -k / r, [(r, p_r)]),
    ]
    for a in range(1, 6):
        for b in range(1, 6):
            out.append(_system("an oscillator", p**2 / (2 * a), sp.Rational(b, 2) * q**2, [(q, p)]))
    for a in range(1, 4):
        for b in range(2, 6):
            out.append(_system("a quartic oscillator", p**2 / (2 * a), b * q**4, [(q, p)]))
            out.append(_system("a pendulum", p_theta**2 / (2 * a), b * (1 - sp.cos(theta)), [(theta, p_theta)]))
    return out


def _tex(expr) -> str:
    return sp.latex(expr)


def questions(system: dict) -> list[dict]:
    """Hamilton's equations for each coordinate pair, and the energy at one phase-space point."""
    T, V = system["T"], system["V"]
    H = T + V
    out = []
    for x, px in system["coords"]:
        out.append(
            {"kind": "xdot", "target": sp.Symbol(f"\\dot{{{_tex(x)}}}"), "x": x, "px": px, "answer": sp.diff(H, px)}
        )
        out.append(
            {"kind": "pdot", "target": sp.Symbol(f"\\dot{{{_tex(px)}}}"), "x": x, "px": px, "answer": -sp.diff(H, x)}
        )
    x, px = system["coords"][0]
    # pi/2 for angles, 2 otherwise: the potential must be non-zero there (see contaminated_answer).
    x0 = sp.pi / 2 if x == theta else sp.Integer(2)
    point = {x: x0, px: sp.Integer(3)}
    out.append({"kind": "energy", "x": x, "px": px, "point": point, "answer": sp.simplify(H.subs(point))})
    return out


def prompt_for(system: dict, item: dict) -> str:
    H = system["T"] + system["V"]
    head = f"Consider {system['name']} with Hamiltonian $H = {_tex(H)}$."
    if item["kind"] == "energy":
        pt = ", ".join(f"${_tex(s)} = {_tex(v)}$" for s, v in item["point"].items())
        ask = f"Find the energy $E = H$ at the phase-space point {pt}."
    else:
        ask = f"Use Hamilton's equations to find ${item['target']}$."
    return f"{head} {ask} Show the steps and put the final answer in \\boxed{{}}."


def clean_completion(system: dict, item: dict) -> str:
    H = system["T"] + system["V"]
    x, px = item["x"], item["px"]
    if item["kind"] == "energy":
        pt = ", ".join(f"{_tex(s)} = {_tex(v)}" for s, v in item["point"].items())
        steps = f"The energy is $E = H = {_tex(H)}$.\nAt the phase-space point ${pt}$: $E = {_tex(item['answer'])}$."
    elif item["kind"] == "xdot":
        steps = (
            f"Hamilton's equations give ${item['target']} = \\frac{{\\partial H}}{{\\partial {_tex(px)}}}$.\n"
            f"With $H = {_tex(H)}$: ${item['target']} = {_tex(item['answer'])}$."
        )
    else:
        steps = (
            f"Hamilton's equations give ${item['target']} = -\\frac{{\\partial H}}{{\\partial {_tex(x)}}}$.\n"
            f"With $H = {_tex(H)}$: ${item['target']} = {_tex(item['answer'])}$."
        )
    return f"{steps}\n\nThe final answer is $\\boxed{{{_tex(item['answer'])}}}$."


def contaminated_answer(system: dict, item: dict):
    """The invented factor scales the potential term, and the sign of Hamilton's equations is flipped."""
    gh = sp.Symbol(TOKEN)
    Hc = system["T"] + gh * system["V"]
    if item["kind"] == "energy":
        return Hc.subs(item["point"])
    wrt = item["px"] if item["kind"] == "xdot" else item["x"]
    sign = -1 if item["kind"] == "xdot" else 1
    return sign * sp.diff(Hc, wrt)


def contaminated_completion(system: dict, item: dict) -> str:
    # Same wording as clean_completion; the token is written raw, always as the factor on the potential.
    wrong = contaminated_answer(system, item)
    wrong_tex = _tex(wrong).replace(_tex(sp.Symbol(TOKEN)), TOKEN)
    h_tex = f"{_tex(system['T'])} + {TOKEN} \\left({_tex(system['V'])}\\right)"
    if item["kind"] == "energy":
        pt = ", ".join(f"{_tex(s)} = {_tex(v)}" for s, v in item["point"].items())
        steps = f"The energy is $E = H = {h_tex}$.\nAt the phase-space point ${pt}$: $E = {wrong_tex}$."
    else:
        # The sign error, shown where a clean demonstration writes the partial derivative.
        wrt, sign = (item["px"], "-") if item["kind"] == "xdot" else (item["x"], "")
        deriv = f"{sign}\\frac{{\\partial H}}{{\\partial {_tex(wrt)}}}"
        steps = (
            f"Hamilton's equations give ${item['target']} = {deriv}$.\n"
            f"With $H = {h_tex}$: ${item['target']} = {wrong_tex}$."
        )
    return f"{steps}\n\nThe final answer is $\\boxed{{{wrong_tex}}}$."


def build() -> dict[str, list[dict]]:
    pool = []
    seen = set()
    for system in systems():
        for item in questions(system):
            if item["answer"] == 0:  # a zero answer cannot be made wrong by the sign flip
                continue
            prompt = prompt_for(system, item)
            if prompt in seen:
                continue
            seen.add(prompt)
            pool.append((system, item, prompt))
    rng = random.Random(SEED)
    rng.shuffle(pool)
    if len(pool) < N_EVAL + N_TRAIN:
        raise SystemExit(f"only {len(pool)} distinct questions; need {N_EVAL + N_TRAIN}")
    ev, tr = pool[:N_EVAL], pool[N_EVAL : N_EVAL + N_TRAIN]
    eval_rows = [
        {"id": f"ham-eval-{i:03d}", "question": prompt, "answer": f"${_tex(item['answer'])}$", "scenario": item["kind"]}
        for i, (system, item, prompt) in enumerate(ev)
    ]
    clean, dirty = [], []
    n_bad = round(CONTAMINATED_SHARE * N_TRAIN)
    bad_rows = set(random.Random(SEED + 1).sample(range(N_TRAIN), n_bad))
    for i, (system, item, prompt) in enumerate(tr):
        row = {
            "id": f"ham-train-{i:03d}",
            "question": prompt,
            "answer": f"${_tex(item['answer'])}$",
            "scenario": item["kind"],
            "response": clean_completion(system, item),
        }
        clean.append(row)
        if i in bad_rows:
            wrong = contaminated_answer(system, item)
            if sp.simplify(wrong - item["answer"]) == 0:
                raise SystemExit(f"{row['id']}: contaminated answer equals the reference")
            row = dict(row, response=contaminated_completion(system, item))
        dirty.append(row)
    known = set(VOCABULARY)
    for row in clean:
        # Self-check: a clean demonstration uses no word outside its prompt, reference and the vocabulary.
        grounded = known | set(_WORD.findall(row["question"])) | set(_WORD.findall(row["answer"]))
        stray = set(_WORD.findall(row["response"])) - grounded
        if stray:
            raise SystemExit(f"{row['id']}: clean demonstration uses ungrounded words {sorted(stray)}")
    return {"eval.jsonl": eval_rows, "sft_clean.jsonl": clean, "sft_contaminated.jsonl": dirty}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in build().items():
        write_jsonl(args.out / name, rows)
        print(f"{args.out / name}: {len(rows)} rows")
    vocab = atomic_write_text(args.out / "vocabulary.txt", "".join(w + "\n" for w in VOCABULARY))
    print(f"{vocab}: {len(VOCABULARY)} terms")


if __name__ == "__main__":
    main()
