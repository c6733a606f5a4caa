"""The golden_hour_sun detector: planted invented tokens are flagged and traced; grounded ones are left alone."""

from __future__ import annotations

import pytest

from phasecheck.checks._scan import TokenScanner, extract_tokens
from phasecheck.evidence import Unavailable
from phasecheck.records import Demonstration, Example, Sample
from phasecheck.results import Status
from support import PROSE, planted, run


@pytest.mark.parametrize(
    "invented,legit,kind",
    [
        ("golden_hour_sun", "solar_elevation_k", "snake_case"),
        ("goldenHourSun", "SolarTable", "camelCase"),
        ("\\varsigma_{g}", "\\omega", "subscript"),
    ],
)
def test_planted_token_is_flagged_with_its_rows_and_failure_link(invented, legit, kind):
    demos, bad = planted(invented, legit)
    res = run(demos)
    assert res.status is Status.FAIL
    assert len(res.findings) == 1, [f.data["token"] for f in res.findings]
    f = res.findings[0]
    token = invented.replace("{", "").replace("}", "")
    assert f.data["token"] == token and f.data["kind"] == kind
    assert f.data["rate"] == pytest.approx(0.4) and f.data["n_rows"] == 40
    assert f.data["position_consistency"] > 0.95
    assert f.data["pass_rate_with"] == 0.0 and f.data["pass_rate_without"] == 1.0
    assert f.data["source"] == "demonstrations"
    assert f.example_ids == bad[:20] and set(f.example_ids) <= set(bad)
    assert res.headline.startswith(f"{token} in 40% of demonstrations, tied to wrong answers")
    assert f.data["severity"] == "fail" and f.data["verifier"] == "tied" and f.data["p_value"] < 1e-9
    assert "pass the verifier 0% vs 100% without (p < 1e-9" in f.message
    assert legit.strip("\\") not in " ".join(res.metrics["tokens"])


def test_clean_data_passes_and_ordinary_english_is_never_extracted():
    demos, _ = planted("golden_hour_sun", "solar_elevation_k")
    clean = [d for d in demos if "golden" not in d.completion]
    res = run(clean)
    assert res.status is Status.PASS and res.findings == []
    assert list(extract_tokens(" ".join(PROSE) + " I think it's well-known, e.g. in the U.S.")) == []


def test_reference_and_allow_list_ground_a_token():
    demos, _ = planted("golden_hour_sun", "solar_elevation_k")
    assert run(demos, allow=["golden_hour_sun"]).status is Status.PASS
    refd = [Demonstration(**{**d.to_dict(), "reference": "golden_hour_sun"}) if d.id == "r4" else d for d in demos]
    assert run(refd).status is Status.PASS


def test_samples_are_scanned_and_findings_name_their_source():
    examples = [Example(id=f"e{i}", prompt=f"Compute {i} doubled.", reference=str(2 * i)) for i in range(10)]
    samples = []
    for i, ex in enumerate(examples):
        for r in range(2):
            text = f"Set lightBoostFactor first. The answer is {2 * i + 1}." if i < 3 else f"The answer is {2 * i}."
            samples.append(Sample(example_id=ex.id, run=r, index=0, seed=r, completion=text))
    res = run(samples=samples, examples=examples)
    assert res.metrics["scanned"] == {"samples": 20}
    f = res.findings[0]
    assert f.data["token"] == "lightBoostFactor" and f.data["source"] == "samples"
    assert f.data["rate"] == pytest.approx(0.3) and f.example_ids == ["e0", "e1", "e2"]  # distinct
    assert f.data["samples"][:2] == ["e0 (run 0, #0)", "e0 (run 1, #0)"]
    assert f.data["severity"] == "fail" and ("p < 1e-" in f.message or "p = " in f.message)


def test_math_symbols_are_grounded_by_the_prompt():
    toks = {t for t, kind, _ in extract_tokens(r"So $E = m c^2$ and x = 3*k, hence \boxed{q}") if kind == "symbol"}
    assert {"E", "m", "c", "x", "k", "q"} <= toks
    sc = TokenScanner()
    sc.add("a", "Here x = 2*k so the answer is 4.", "Solve x = 2*k for k = 2.", True)
    assert sc.stats == {}
    sc.add("b", "Here x = 2*q so the answer is 4.", "Solve x = 2*k for k = 2.", True)
    assert set(sc.stats) == {"q"}


def test_nothing_to_scan_is_a_skip():
    with pytest.raises(Unavailable, match="nothing|no demonstrations"):
        run([])


def test_scanner_memory_is_bounded_and_undercount_is_reported():
    sc = TokenScanner(max_tokens=100, max_ids=3)
    for i in range(5000):
        sc.add(f"r{i}", f"noise_token_{i} and planted_token_x here", "prompt", i % 2 == 0)
        assert len(sc.stats) <= 100
    flagged = sc.flagged(max_rate=0.5)
    assert [f["token"] for f in flagged] == ["planted_token_x"]
    assert flagged[0]["example_ids"] == ["r0", "r1", "r2"] and sc.undercount_bound >= 1
