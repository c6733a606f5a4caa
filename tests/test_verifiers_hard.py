"""Hard cases for the math and numeric verifiers, one group per class of disagreement with math-verify or labels."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from phasecheck.grading import Grader
from phasecheck.grading.math import Math
from phasecheck.grading.numeric import Numeric
from phasecheck.grading.pool import OK, TIMEOUT, TimeoutPool
from phasecheck.records import Example, Outcome
from phasecheck.task import TaskSpec


@pytest.fixture(scope="module")
def pool():
    with TimeoutPool(1) as p:
        yield p


def math_scores(pool, pairs, **params):
    v = Math(Math.Params(**params), timeout=30, pool=pool)
    return [j.score for j in v.judge([a for _, a in pairs], reference=[r for r, _ in pairs])]


def grade(text, reference, kind="math", pool=None, **verifier):
    task = TaskSpec.model_validate({"name": "hard", "grader": {"verifier": {"kind": kind, "timeout": 30, **verifier}}})
    with Grader(task, pool=pool) as g:
        return g.grade(text, Example(id="e", prompt="", reference=reference))


# --- references as datasets write them: bare LaTeX, currency, percent, digit groups, matrices ------------

BARE_REFERENCES = [
    ("\\$6", "The total is $\\boxed{6}$.", 1.0),
    ("\\$6", "\\boxed{\\$6}", 1.0),
    ("\\$6", "\\boxed{7}", 0.0),
    ("\\$1.50", "1.5", 1.0),
    ("\\$16,\\!386.20", "16386.2", 1.0),
    ("10{,}000", "10000", 1.0),
    ("25\\%", "25", 1.0),
    ("25\\%", "0.25", 1.0),
    ("25\\%", "26", 0.0),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}", 1.0),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\3\\end{pmatrix}", 0.0),
    ("\\sqrt{2}-1$,$\\frac{3-\\sqrt{2}}{7}", "$\\sqrt2-1$ and $\\frac{3-\\sqrt{2}}{7}$", 1.0),  # "a$,$b" lists
    ("69$,$84", "\\boxed{84}", 0.0),
]


def test_bare_references_are_read(pool):
    assert math_scores(pool, [(r, a) for r, a, _ in BARE_REFERENCES]) == [e for _, _, e in BARE_REFERENCES]


# --- answers: no invented structure where the library reads the text right -------------------------------

PLAIN_ANSWERS = [
    ("0", "1 000", 0.0),  # not 1*0
    ("1000", "1 000", 1.0),
    ("5", "5 m/s", 1.0),  # a unit, not a product
    ("1.22", "1,22", 1.0),  # a decimal comma, not the set {1, 22}
    ("111", "0,111", 0.0),  # 0.111, not 111
    ("1000", "1e3", 1.0),
    ("10^3", "1e3", 1.0),
    ("1000", "10^{3}", 1.0),
    ("\\{1,2\\}", "1 \\text{ and } 2", 1.0),  # \text{and} inside math is not prose
]


@pytest.mark.parametrize("fast_path", [True, False])
def test_plain_answers_read_as_written_by_both_paths(pool, fast_path):
    got = math_scores(pool, [(r, a) for r, a, _ in PLAIN_ANSWERS], fast_path=fast_path)
    assert got == [e for _, _, e in PLAIN_ANSWERS]


def test_ignored_units_and_currency_are_named_in_the_detail(pool):
    v = Math(Math.Params(), timeout=30, pool=pool)
    j1, j2 = v.judge(["5 m/s", "\\boxed{\\$6}"], reference=["5", "6"])
    assert j1.score == 1.0 and "unit 'm/s' ignored" in j1.detail
    assert j2.score == 1.0 and "currency" in j2.detail


# --- several boxed answers ---------------------------------------------------------------------------------

BOXES = [
    ("So $x=\\boxed{1}$ and $x=\\boxed{2}$.", "\\{1,2\\}", True),
    ("The roots are \\boxed{1}, \\boxed{2}", "1, 2", True),
    ("The roots are \\boxed{1}, \\boxed{2}", "2", False),  # two answers against one is not correct
    ("\\boxed{5} and again \\boxed{5}", "5", True),  # a repeat is one answer
    ("First \\boxed{3}. Then, adding the two parts, we get \\boxed{5}", "5", True),  # an earlier step's box
]


def test_several_boxes_are_one_answer_set(pool):
    got = [grade(text, reference, pool=pool, extract="boxed").correct for text, reference, _ in BOXES]
    assert got == [c for _, _, c in BOXES]


# --- long reasoning: the final answer is found, and too long is its own outcome ---------------------------

STEP = "Perhaps we can factor the expression; it might be easier to expand it first and then compare terms. "


def test_long_reasoning_is_judged_by_its_final_answer_by_default(pool):
    text = STEP * 60 + "Therefore the area is $\\boxed{\\frac{3}{4}}$."
    assert len(text) > 5000
    g = grade(text, "0.75", pool=pool)
    assert g.outcome is Outcome.CORRECT and g.answer == "\\frac{3}{4}"
    wrong = grade(STEP * 60 + "The answer is 7.", "8", pool=pool)
    assert wrong.outcome is Outcome.HEDGED and wrong.answer == "7"  # judged, then its hedges counted


def test_whole_extraction_of_long_reasoning_still_reads_the_final_answer(pool):
    g = grade(STEP * 60 + "Final answer: $x = 12$", "12", pool=pool, extract="whole")
    assert g.outcome is Outcome.CORRECT and "final answer" in g.detail


def test_too_long_is_its_own_outcome_never_hedged(pool):
    g = grade("perhaps " * 2000, "12", pool=pool, extract="whole")
    assert g.outcome is Outcome.TOO_LONG and g.correct is None
    assert g.reward == 0.0  # the wrong band: nothing paid


def test_gsm8k_style_answer_lines(pool):
    assert grade("She answered 48 questions in all.\n#### 66", "66", pool=pool).correct is True
    assert grade("16 - 3 = <<16-3=13>>13 eggs, so $<<13*2=26>>26\nA: 26", "18", kind="numeric").correct is False


# --- numeric: units, currency, percent, digit groups ------------------------------------------------------

NUMERIC = [
    ("12 cm^2", "12", 1.0),  # the 2 is the unit's exponent
    ("25%", "25", 1.0),  # "what percent" questions: the reference is the number
    ("\\$5", "5", 1.0),
    ("5", "\\$5", 1.0),
    ("1 000", "1000", 1.0),
    ("0,111", "111", 0.0),
    ("10^3", "1000", 1.0),
    ("about 12 cm^2", "2", 0.0),
]


def test_numeric_hard_cases():
    assert Numeric().score([a for a, _, _ in NUMERIC], reference=[r for _, r, _ in NUMERIC]) == [
        e for _, _, e in NUMERIC
    ]


def test_numeric_reads_long_text_and_says_too_long_past_its_bound():
    v = Numeric(Numeric.Params(max_chars=10_000))
    assert v.score(["word " * 1000 + "so 42"], reference=["42"]) == [1.0]
    assert v.judge(["word " * 3000 + "so 42"], reference=["42"])[0].why == "too_long"


# --- timeouts measured in the worker's CPU time -------------------------------------------------------------


def _pause(pid: int, seconds: float) -> threading.Thread:
    """Starve a worker as a loaded machine would: stop it now, before its call arrives (stopping it mid-call
    raced a fast machine, which finished the work first), and let it run again after `seconds`."""
    os.kill(pid, signal.SIGSTOP)

    def resume():
        time.sleep(seconds)
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:  # a wall-clock budget killed it meanwhile
            pass

    th = threading.Thread(target=resume)
    th.start()
    return th


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="CPU time is read from /proc")
def test_cpu_budget_does_not_flip_when_the_worker_is_starved():
    with TimeoutPool(1) as p:
        p.call(abs, (1,), 60)
        worker = next(iter(p._all))
        th = _pause(worker.proc.pid, 1.5)
        status, _ = p.call(sum, (range(3_000_000),), 1.0, clock="cpu", wall_factor=10)
        th.join()
        assert status == OK  # 1.5 s without CPU is not 1 s of work
        th = _pause(worker.proc.pid, 1.5)
        status, _ = p.call(sum, (range(3_000_000),), 1.0, clock="wall")
        th.join()
        assert status == TIMEOUT  # what a wall-clock budget makes of the same call under load
        p.call(abs, (1,), 60)
        worker = next(w for w in p._all if w.alive())
        t = time.monotonic()
        status, why = p.call(sum, (range(10**12),), 0.5, clock="cpu", wall_factor=20)
        assert status == TIMEOUT and "CPU" in why and time.monotonic() - t < 5
        assert p.stats()["timeouts"] == 2


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="CPU time is read from /proc")
def test_a_stalled_worker_hits_the_wall_cap_and_is_retried_once():
    with TimeoutPool(1) as p:
        p.call(abs, (1,), 60)
        status, why = p.call(time.sleep, (60,), 0.2, clock="cpu", wall_factor=3)
        assert status == TIMEOUT and "wall clock" in why
        assert p.stats() == {"timeouts": 1, "retried": 1, "workers_killed": 2}


# --- Math-Verify's own suite (bench/verify_mathverify_suite.py): classes where our reading was wrong ------

# Boxes joined by more than one connector, or by inline delimiters around "and", are one answer set.
JOINED_BOXES = [
    ("$\\boxed{4} \\quad \\text{and} \\quad \\boxed{-3}$", "-3, 4", True),
    ("$\\boxed{a = 7}\\qquad\\text{or}\\qquad\\boxed{b = 2}$", "a = 7, b = 2", True),
    ("\\(p = \\boxed{11}\\) and \\(q = \\boxed{5}\\)", "(11, 5)", True),
    ("$\\boxed{2}$ \\text{ for the first part and } $\\boxed{9}$", "2, 9", True),
    ("$\\boxed{4} \\quad \\text{and} \\quad \\boxed{-3}$", "4", False),  # still two answers against one
    ("We get \\boxed{6}. Checking the other case, the total is \\boxed{8}", "8", True),  # prose: not a list
]


def test_boxes_joined_by_several_connectors_are_one_answer_set(pool):
    got = [grade(text, reference, pool=pool).correct for text, reference, _ in JOINED_BOXES]
    assert got == [c for _, _, c in JOINED_BOXES]


def test_a_boxed_matrix_is_math_not_prose(pool):
    # "pmatrix" is an environment's name, not a word: the box's content is read in math mode.
    text = "Hence $M = \\boxed{\\begin{pmatrix} 2 & -1 \\\\ 0 & 5 \\end{pmatrix}}$."
    assert grade(text, "\\begin{pmatrix}2&-1\\\\0&5\\end{pmatrix}", pool=pool).correct is True
    assert grade(text, "\\begin{pmatrix}2&-1\\\\0&6\\end{pmatrix}", pool=pool).correct is False
    assert grade(text, "5", pool=pool).correct is False  # not its last entry


def test_an_answer_line_after_the_last_box_is_the_final_answer(pool):
    # Boxes around intermediate results, then the final answer stated on its own line.
    text = (
        "The first step gives $3 \\cdot 4 = \\boxed{12}$ apples, and the second $12 + 9 = \\boxed{21}$.\n"
        "Adding the 2,100 pears from the shed, the total is 2,121.\nFinal Answer: The final answer is $2{,}121$."
    )
    assert grade(text, "2121", pool=pool).correct is True
    assert grade(text, "21", pool=pool).correct is False
    # A box on the answer line, or after it, is still the answer.
    assert grade("The answer is $\\boxed{7}$.", "7", pool=pool).correct is True
    assert grade("Final answer: 6, but checking again gives \\boxed{7}", "7", pool=pool).correct is True
    # extract: boxed means the box, whatever follows.
    assert grade(text, "21", pool=pool, extract="boxed").correct is True


# --- bold is typeface (PDF-to-LaTeX solutions bold the result digit by digit) --------------------------------

BOLD = [
    ("\\frac{5}{48}", "so the probability is $\\frac{\\mathbf{5}}{\\mathbf{4 8}}$.", True),
    ("\\frac{5}{48}", "so the probability is $\\frac{\\mathbf{5}}{\\mathbf{4 9}}$.", False),
    ("3025", "The answer is $55^{2}=\\mathbf{3 0 2 5}$.", True),
    ("325", "The answer is $55^{2}=\\mathbf{3 0 2 5}$.", False),  # not 3*0*2*5 = 0, nor the first digits
    ("0", "The answer is $55^{2}=\\mathbf{3 0 2 5}$.", False),
    ("4\\sqrt{3}", "Final answer: $\\mathbf{4} \\sqrt{\\mathbf{3}}$", True),
    ("-17", "The answer is $\\mathbf{- 1 7}$.", True),
    ("2.75", "The answer is $\\mathbf{2 . 7 5}$", True),
    ("12", "The answer is $\\mathbf{1 2 .}$", True),  # the sentence's stop, bolded with it
    ("20", "Final answer: $$6^{2}-16=\\mathbf{2 0} .$$", True),  # "= {20} ." is not read; "= 20 ." is
    ("x^{12}", "The answer is $x^\\mathbf{1 2}$", True),  # an exponent keeps its group
]


def test_bold_groups_are_read_as_their_content(pool):
    got = [grade(text, reference, pool=pool).correct for reference, text, _ in BOLD]
    assert got == [c for _, _, c in BOLD]
