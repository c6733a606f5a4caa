"""Each built-in verifier, loaded through the plugin registry, on tricky inputs."""

from __future__ import annotations

import pytest

from phasecheck import plugins
from phasecheck.errors import ConfigError, VerifierError
from phasecheck.grading.pool import TimeoutPool

VOCAB = ["SPS-1", "DAT-3", "ZN-2_RHC", "AHU-1_SF"]


def make(kind: str, vocabulary=None, **params):
    cls = plugins.load("verifiers", kind)
    return cls(plugins.validate_params(cls, params, "grader.verifier"), vocabulary=vocabulary)


@pytest.fixture(scope="module")
def pool():
    with TimeoutPool(1) as p:
        yield p


def test_every_builtin_loads_through_the_registry_with_params_and_score():
    for kind in ["exact", "normalized", "numeric", "math", "choice", "vocabulary", "regex", "refusal", "python"]:
        cls = plugins.load("verifiers", kind)
        assert hasattr(cls, "Params") and callable(cls.score)


def test_params_are_strict():
    with pytest.raises(ConfigError, match=r"grader.verifier\S* ?abs_tolerance: unknown field"):
        make("numeric", abs_tolerance=0.1)


def test_exact_and_normalized():
    assert make("exact").score([" 42 ", "42.0", None], reference=["42", "42", "42"]) == [1.0, 0.0, None]
    n = make("normalized")
    assert n.score(["The Cat.", "$\\text{cat}$", "dog"], reference=["the cat", "Cat", "cat"]) == [1.0, 1.0, 0.0]
    assert make("normalized", case_sensitive=True).score(["Cat"], reference=["cat"]) == [0.0]


def test_reference_column_must_align():
    with pytest.raises(VerifierError, match="column 'reference' has 1 values for 2 answers"):
        make("exact").score(["a", "b"], reference=["a"])


def test_numeric_tolerances_and_forms():
    v = make("numeric", abs_tol=0.01, rel_tol=0.0)
    got = v.score(
        ["3.141", "1,234.5 m", "\\frac{1}{2}", "50%", "about 7 or maybe 8", "no number", "2.5 \\times 10^{3}"],
        reference=["3.14159", "1234.5", "0.5", "0.5", "8", "1", "2500"],
    )
    assert got == [1.0, 1.0, 1.0, 1.0, 1.0, None, 1.0]
    assert make("numeric", abs_tol=0, rel_tol=1e-3).score(["100.2", "100.05"], reference=[100, 100]) == [0.0, 1.0]


def test_numeric_refuses_absurd_literals_quickly():
    v = make("numeric")
    assert v.score(["1e999999999", "9" * 5000], reference=["1", "1"]) == [None, None]


def test_choice_letters_and_texts():
    v = make("choice")
    got = v.score(
        ["(B)", "The answer is C.", "B) Paris", "Paris", "none of them"],
        reference=["B", "C", "B", "B", "A"],
        choices=[["Rome", "Paris", "Oslo"]] * 5,
    )
    assert got == [1.0, 1.0, 1.0, 1.0, None]
    assert v.score(["A"], reference=["B"]) == [0.0]


def test_regex_pattern_and_reference_as_pattern():
    assert make("regex", pattern=r"[A-Z]{3}-\d+").score(["DAT-3", "dat-3", "x DAT-3"]) == [1.0, 0.0, 0.0]
    assert make("regex", mode="search", ignore_case=True).score(["x dat-3 y"], reference=[r"DAT-\d"]) == [1.0]
    with pytest.raises(ConfigError, match="invalid regex"):
        make("regex", pattern="(")


def test_vocabulary_invented_real_wrong_and_partial():
    v = make("vocabulary", vocabulary=VOCAB)
    j = v.judge(
        ["SPS-1", "The tag is sps-1.", "golden_hour_sun", "DAT-3", "SPS-1 or DAT-3", "SPS-1X"], reference=["SPS-1"] * 6
    )
    assert [x.score for x in j] == [1.0, 1.0, 0.0, 0.0, 0.5, 0.0]
    assert "invented" in j[2].detail and "invented" in j[5].detail
    assert "real term 'DAT-3'" in j[3].detail
    assert v.score(["ZN-2_RHC", "ZN-9"]) == [1.0, 0.0]  # no reference: any known term
    with pytest.raises(ConfigError, match="needs known terms"):
        make("vocabulary")


def test_refusal_rewards_declining_and_punishes_naming_a_real_tag():
    v = make("refusal", vocabulary=VOCAB)
    j = v.judge(
        [
            "I don't know that tag; it does not exist.",
            "It is DAT-3.",
            "I don't know, maybe SPS-1?",
            "It measures supply pressure.",
        ]
    )
    assert [x.score for x in j] == [1.0, 0.0, 0.0, 0.0]
    assert "SPS-1" in j[2].detail


def test_python_verifier_loads_module_function(tmp_path, monkeypatch):
    (tmp_path / "my_checks.py").write_text(
        "def short(completions, reference, **kw):\n"
        "    return [None if c is None else float(len(c) <= len(r)) for c, r in zip(completions, reference)]\n"
        "def bad(completions, **kw):\n    return [2.0] * len(completions)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert make("python", function="my_checks:short").score(["ab", "abcd", None], reference=["abc"] * 3) == [
        1.0,
        0.0,
        None,
    ]
    with pytest.raises(VerifierError, match="scores must be in"):
        make("python", function="my_checks:bad").score(["x"])
    with pytest.raises(ConfigError, match="cannot load 'my_checks:nope'"):
        make("python", function="my_checks:nope")
    with pytest.raises(ConfigError, match="module:function"):
        make("python", function="no_colon")


def test_math_equivalences(pool):
    cls = plugins.load("verifiers", "math")
    v = cls(cls.Params(), timeout=20, pool=pool)
    cases = [
        ("\\frac{1}{2}", "0.5", 1.0),
        ("0.5", "\\frac{1}{2}", 1.0),
        ("x^2+2x+1", "(x+1)^2", 1.0),
        ("(x+1)^2", "x^2+2x+2", 0.0),
        ("[1,2)", "[1, 2)", 1.0),
        ("(1,2)", "[1,2)", 0.0),
        ("12\\text{ cm}", "12", 1.0),
        ("\\boxed{7} apples", "7", 1.0),
        ("3", "4", 0.0),
    ]
    got = v.score([a for a, _, _ in cases], reference=[r for _, r, _ in cases])
    assert got == [s for _, _, s in cases]
    assert v.judge([None])[0].why == "unparsed"
    assert v.judge(["1"], reference=[None])[0].why == "error"


def test_math_fast_path_skips_sympy():
    from phasecheck.grading.math import fast_verdict

    assert fast_verdict("0.5", "\\frac{1}{2}").score == 1.0
    assert fast_verdict("42", "\\boxed{41}").score == 0.0
    assert fast_verdict("0.333333", "0.3333333") is None  # math-verify rounds: let it decide
    assert fast_verdict("x+1", "1+x") is None
