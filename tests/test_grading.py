"""Grader: extraction, outcomes, the per-scenario reward-band table from a task file, and the TRL reward func."""

from __future__ import annotations

import pytest

from phasecheck.errors import ConfigError, VerifierError
from phasecheck.grading import Grader, as_reward_func, extract_answer
from phasecheck.records import Example, Outcome
from phasecheck.task import TaskSpec, load_task

TASK = """
name: equipment tags
grader:
  vocabulary: tags.txt
  verifier: {kind: vocabulary, extract: {after: "Tag:"}}
  scenarios:
    reverse_lookup: {correct: 1.0, wrong: -0.8}
    direct_lookup: {correct: 0.7, partial: 0.3, wrong: -0.5}
    context_reasoning: {correct: 0.6, wrong: -0.4, keyword_bonus: 0.1, max_keyword_bonus: 0.2}
    unknown_tag: {verifier: {kind: refusal, extract: whole}, correct: 1.0, wrong: -1.0}
    typo_robustness: {correct: 1.2, wrong: -0.5}
  hedging_penalty: -0.2
  format_bonus: 0.1
  concise_chars: 40
"""
PAD = " Checked against the site's maintenance manual and the building automation export."


@pytest.fixture()
def task(tmp_path):
    (tmp_path / "tags.txt").write_text("# site tags\nSPS-1\nDAT-3\nZN-2_RHC\n\nAHU-1_SF\n")
    (tmp_path / "task.yaml").write_text(TASK)
    return load_task(tmp_path / "task.yaml")


def ex(scenario, reference="SPS-1", **columns):
    return Example(id="e", prompt="Which tag?", reference=reference, scenario=scenario, columns=columns)


# (scenario, completion, reference, keywords, reward, outcome) -- long completions get no format bonus.
TABLE = [
    ("reverse_lookup", "Tag: SPS-1" + PAD, "SPS-1", None, 1.0, "correct"),
    ("reverse_lookup", "Tag: DAT-3" + PAD, "SPS-1", None, -0.8, "wrong"),
    ("direct_lookup", "Tag: SPS-1" + PAD, "SPS-1", None, 0.7, "correct"),
    ("direct_lookup", "Tag: SPS-1 or DAT-3" + PAD, "SPS-1", None, 0.3, "wrong"),
    ("direct_lookup", "Tag: golden_hour_sun" + PAD, "SPS-1", None, -0.5, "wrong"),
    ("context_reasoning", "Tag: DAT-3" + PAD, "DAT-3", None, 0.6, "correct"),
    (
        "context_reasoning",
        "Tag: DAT-3 (discharge air temperature)" + PAD,
        "DAT-3",
        ["discharge", "air", "temperature"],
        0.8,
        "correct",
    ),
    ("context_reasoning", "Tag: DAT-3 discharge" + PAD, "DAT-3", "discharge, supply", 0.7, "correct"),
    ("context_reasoning", "Tag: SPS-1" + PAD, "DAT-3", None, -0.4, "wrong"),
    ("unknown_tag", "I don't know that tag; it is not in the taxonomy." + PAD, None, None, 1.0, "correct"),
    ("unknown_tag", "That is DAT-3." + PAD, None, None, -1.0, "wrong"),
    ("unknown_tag", "I don't know, possibly AHU-1_SF." + PAD, None, None, -1.2, "hedged"),
    ("typo_robustness", "Tag: ZN-2_RHC" + PAD, "ZN-2_RHC", None, 1.2, "correct"),
    ("typo_robustness", "Tag: ZN-2_RHX" + PAD, "ZN-2_RHC", None, -0.5, "wrong"),
    # hedging on top, and its outcome
    ("reverse_lookup", "I think it might be this one. Tag: SPS-1" + PAD, "SPS-1", None, 0.8, "correct"),
    ("reverse_lookup", "I think it might be this one. Tag: DAT-3" + PAD, "SPS-1", None, -1.0, "hedged"),
    ("unknown_tag", "I'm not sure; I don't know that tag." + PAD, None, None, 1.0, "correct"),
    # format/concision bonus on top (completion <= 40 chars with an extracted answer)
    ("reverse_lookup", "Tag: SPS-1", "SPS-1", None, 1.1, "correct"),
    ("direct_lookup", "Tag: DAT-3", "SPS-1", None, -0.4, "wrong"),
    ("typo_robustness", "Tag: ZN-2_RHC", "ZN-2_RHC", None, 1.3, "correct"),
    ("unknown_tag", "I don't know that tag.", None, None, 1.1, "correct"),
    # no answer: unparsed, wrong band, no bonus; a refusal outside unknown_tag is "refused"
    ("reverse_lookup", "SPS-1", "SPS-1", None, -0.8, "unparsed"),
    ("reverse_lookup", "I don't know that tag." + PAD, "SPS-1", None, -0.8, "refused"),
]


@pytest.mark.parametrize("scenario,completion,reference,keywords,reward,outcome", TABLE)
def test_reward_band_table(task, scenario, completion, reference, keywords, reward, outcome):
    with Grader(task) as g:
        cols = {"keywords": keywords} if keywords is not None else {}
        grade = g.grade(completion, ex(scenario, reference, **cols))
    assert grade.reward == pytest.approx(reward), grade
    assert grade.outcome.value == outcome, grade
    assert grade.correct is (outcome == "correct")


def test_vocabulary_from_file_and_lazy_pool(task):
    with Grader(task) as g:
        assert g.vocabulary == ["SPS-1", "DAT-3", "ZN-2_RHC", "AHU-1_SF"]
        g.grade_many([("Tag: SPS-1", ex("reverse_lookup"))] * 3)
        assert not g.pool.started  # string verifiers never spawn a process


def test_grade_many_dedups_and_keeps_order(task):
    g = Grader(task)
    calls = []
    verifier = g._verifiers[None][1]
    real = verifier.judge
    verifier.judge = lambda answers, **c: calls.append(len(answers)) or real(answers, **c)
    pairs = [("Tag: SPS-1", ex("reverse_lookup")), ("Tag: DAT-3", ex("reverse_lookup"))] * 5
    grades = g.grade_many(pairs)
    assert [x.reward for x in grades] == [1.1, -0.7] * 5
    assert calls == [2]
    g.grade_many(pairs)  # cached across calls too
    assert calls == [2]


def test_extract_answer_methods():
    text = "Work: 1+1.\nSo \\boxed{\\frac{1}{2}} is it.\nFinal answer: 0.5\n"
    assert extract_answer(text, "whole") == text.strip()
    assert extract_answer(text, "last_line") == "Final answer: 0.5"
    assert extract_answer(text, "boxed") == "\\frac{1}{2}"
    assert extract_answer(text, {"regex": r"answer: (\S+)"}) == "0.5"
    assert extract_answer(text, {"after": "Final answer:"}) == "0.5"
    assert extract_answer("no box here", "boxed") is None
    assert extract_answer("\\boxed{unclosed", "boxed") is None
    with pytest.raises(VerifierError, match="unknown method"):
        extract_answer(text, "first_line")


def test_bad_extract_and_unknown_verifier_are_config_errors(tmp_path):
    t = TaskSpec.model_validate({"name": "x", "grader": {"verifier": {"kind": "exact", "extract": {"regex": "("}}}})
    with pytest.raises(ConfigError, match="grader.verifier.extract.regex: invalid regex"):
        Grader(t)
    t = TaskSpec.model_validate({"name": "x", "grader": {"verifier": {"kind": "exactt"}}})
    with pytest.raises(ConfigError, match="did you mean 'exact'"):
        Grader(t)
    t = TaskSpec.model_validate({"name": "x", "grader": {"vocabulary": str(tmp_path / "none.txt")}})
    with pytest.raises(ConfigError, match="grader.vocabulary: .*file not found"):
        Grader(t)


def test_reward_func_trl_signature(task):
    fn = as_reward_func(task)
    assert fn.__name__ == "phasecheck_equipment_tags"
    completions = [[{"role": "assistant", "content": "Tag: SPS-1"}], "Tag: DAT-3", "I don't know that tag."]
    got = fn(
        completions,
        prompts=["p"] * 3,
        reference=["SPS-1", "SPS-1", None],
        scenario=["reverse_lookup", "direct_lookup", "unknown_tag"],
        completion_ids=[[1], [2], [3]],
        trainer_state=object(),
    )
    assert got == pytest.approx([1.1, -0.4, 1.1])
    with pytest.raises(VerifierError, match="column 'reference' has 1 values for 3 completions"):
        fn(completions, reference=["SPS-1"])
    fn.grader.close()


def test_reward_func_none_only_when_not_judgeable(tmp_path):
    t = TaskSpec.model_validate({"name": "m", "grader": {"verifier": {"kind": "exact"}, "default": {"wrong": -1}}})
    fn = as_reward_func(t)
    assert fn(["a", "b", "c"], reference=["a", "a", None]) == [1.0, -1.0, None]
    grade = fn.grader.grade("c", Example(id="1", prompt="p"))
    assert grade.outcome is Outcome.ERROR and grade.correct is None


# --- as_reward_func as TRL calls it (issue 11) ----------------------------------------------------


def _mapped_task(**fields):
    return TaskSpec.model_validate(
        {"name": "m", "data": {"fields": fields}, "grader": {"verifier": {"kind": "exact"}, "default": {"wrong": -1}}}
    )


def test_reward_func_missing_reference_column_raises_on_first_call():
    fn = as_reward_func(_mapped_task(reference="answer"))
    with pytest.raises(VerifierError) as e:
        fn(["a"], prompts=["p"], solution=["a"], trainer_state=object())
    msg = str(e.value)
    assert "maps the reference to 'answer'" in msg and "columns are: prompts, solution" in msg and "None" in msg
    fn.grader.close()


def test_reward_func_explicit_mapping_beats_a_same_named_column():
    fn = as_reward_func(_mapped_task(reference="answer", scenario="kind", id="uid"))
    got = fn(["a", "b"], answer=["a", "b"], reference=["zzz", "zzz"], scenario=["x", "y"], id=[1, 1], uid=["u1", "u2"])
    assert got == [1.0, 1.0]
    fn.grader.close()


def test_reward_func_ignores_trl_keywords_that_are_not_columns():
    seen = {}

    class Env:
        pass

    fn = as_reward_func(_mapped_task())
    real = fn.grader.grade_many

    def spy(pairs):
        seen["columns"] = [sorted(ex.columns) for _, ex in pairs]
        return real(pairs)

    fn.grader.grade_many = spy
    got = fn(
        ["a"],
        prompts=["p"],
        reference=["a"],
        completion_ids=[[1]],
        environments=[Env()],
        log_extra=print,
        log_metric=print,
        trainer_state=object(),
        topic=["t"],
    )
    assert got == [1.0] and seen["columns"] == [["topic"]]
    fn.grader.close()


def test_reward_func_counts_none_rewards_and_warns(caplog):
    fn = as_reward_func(_mapped_task())
    with caplog.at_level("WARNING", logger="phasecheck"):
        assert fn(["a", "b"], reference=["a", None]) == [1.0, None]
        assert fn(["a"], reference=["a"]) == [1.0]
    assert fn.stats.as_dict() == {"calls": 2, "completions": 3, "none": 1, "outcomes": {"correct": 2, "error": 1}}
    assert "1 of 2 rewards are None" in caplog.text and "no reference" in caplog.text
    fn.grader.close()


def test_trl_dataset_uses_the_task_column_names(tmp_path):
    from phasecheck.records import Example as Ex
    from phasecheck.training.trl_backend import _dataset

    class Tok:
        chat_template = None

    task = _mapped_task(reference="answer", scenario="kind")
    ds = _dataset(task, Tok(), [Ex(id="1", prompt="p", reference="a", scenario="s")])
    row = ds[0]
    assert row["answer"] == "a" and row["kind"] == "s" and "reference" not in row
    fn = as_reward_func(task)
    assert fn(["a"], **{k: [v] for k, v in row.items() if k != "prompt"}, prompts=[row["prompt"]]) == [1.0]
    fn.grader.close()


# --- counts of grades that could not be judged reach the verdict and its reports ---------------------------

COUNT_TASK = """\
name: counts
data: {eval: eval.jsonl, train: train.jsonl, samples: samples.jsonl}
grader:
  verifier: {kind: math, extract: whole, max_chars: 40}
sampling: {runs: 1, n: 2}
checks:
  base_model: {min_accuracy: 0.5}
"""


def _count_project(root, long_rows: int):
    import json

    evals = [{"id": f"q{i}", "prompt": f"Double {i}.", "reference": str(2 * i)} for i in range(6)]
    stall = "perhaps we should keep trying other ideas " * 3  # past max_chars, no final answer in it
    samples = [
        {
            "example_id": f"q{i}",
            "run": 0,
            "index": j,
            "seed": j,
            "model": "",
            "engine": "replay",
            "completion": stall if i < long_rows and j == 0 else f"The answer is {2 * i}.",
        }
        for i in range(6)
        for j in range(2)
    ]
    train = [
        {"id": f"t{i}", "prompt": f"Double {i}.", "reference": str(2 * i), "completion": f"It is {2 * i}."}
        for i in range(6)
    ]
    for name, rows in (("eval", evals), ("samples", samples), ("train", train)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "phasecheck.yaml").write_text(COUNT_TASK)
    return load_task(root / "phasecheck.yaml")


@pytest.mark.parametrize("long_rows", [0, 3])
def test_unjudged_grades_are_counted_in_the_verdict_and_said_in_the_reports(tmp_path, long_rows):
    from phasecheck.reports.html import HtmlReporter
    from phasecheck.reports.text import TextReporter
    from phasecheck.results import load_verdict
    from phasecheck.runner import CheckOptions, check_task

    task = _count_project(tmp_path, long_rows)
    verdict, path = check_task(task, CheckOptions(out_dir=tmp_path / "out"))
    saved = load_verdict(path)
    assert saved.grading == verdict.grading
    assert saved.grading["samples"] == {"graded": 12, "timeout": 0, "too_long": long_rows, "error": 0}
    assert saved.grading["demonstrations"] == {"graded": 6, "timeout": 0, "too_long": 0, "error": 0}
    text = TextReporter().render(saved)
    html = HtmlReporter().render(saved, out_dir=path.parent)
    said = f"Grading: {long_rows} too long to judge of 12 samples"
    assert (said in text) == (said in html) == bool(long_rows)
    if long_rows:
        assert text.index(said) < text.index("Status:")  # beside the checklist, before the verdict line


def test_grading_note_names_each_set_and_kind():
    from phasecheck.reports.common import grading_note
    from phasecheck.results import Fingerprint, Phase, Verdict

    fp = Fingerprint(task="t", sampling="s", version="v", digest="d")
    v = Verdict(
        task="t",
        status=Phase.GRPO_PHASE,
        action="a",
        checks=[],
        fingerprint=fp,
        created_at="now",
        grading={
            "samples": {"graded": 512, "timeout": 3, "too_long": 1, "error": 0},
            "demonstrations": {"graded": 40, "timeout": 0, "too_long": 0, "error": 2},
        },
    )
    assert grading_note(v) == (
        "Grading: 3 timed out, 1 too long to judge of 512 samples; 2 could not be graded "
        "of 40 demonstrations (timed out and too long score as wrong)."
    )
    assert grading_note(v.model_copy(update={"grading": {}})) is None


def test_the_schema_says_extract_defaults_to_the_verifiers_own():
    prop = TaskSpec.model_json_schema()["$defs"]["VerifierSpec"]["properties"]["extract"]
    assert prop["default"] is None and "final for math and numeric" in prop["description"]
    resolved = {}
    for kind, extract in (("math", None), ("numeric", None), ("exact", None), ("math", "boxed")):
        verifier = {"kind": kind} if extract is None else {"kind": kind, "extract": extract}
        with Grader(TaskSpec.model_validate({"name": "x", "grader": {"verifier": verifier}})) as g:
            resolved[kind, extract] = g._verifiers[None][0].extract
    assert resolved == {
        ("math", None): "final",
        ("numeric", None): "final",
        ("exact", None): "whole",
        ("math", "boxed"): "boxed",
    }


# --- the verifier contract: the Grader calls judge(), whichever method a plugin wrote --------------------


@pytest.fixture()
def third_party_verifiers():
    """support's verifiers registered under entry points, as a third-party distribution would register them."""
    from importlib.metadata import EntryPoint

    from phasecheck import plugins

    names = {
        "score_only": "ScoreOnly",
        "score_only_verifier": "ScoreOnlyVerifier",
        "judge_only": "JudgeOnly",
        "no_methods": "NoMethods",
    }
    plugins.register(
        "verifiers",
        [EntryPoint(name=n, value=f"support:{cls}", group="phasecheck.verifiers") for n, cls in names.items()],
    )
    yield
    plugins.unregister_all()


@pytest.mark.parametrize("kind", ["score_only", "score_only_verifier"])
def test_a_verifier_that_writes_only_score_grades_through_the_grader(third_party_verifiers, kind):
    task = TaskSpec(name="t", grader={"verifier": {"kind": kind}, "default": {"correct": 1.0, "wrong": -1.0}})
    with Grader(task) as g:
        right, wrong, unjudged = g.grade_many([("42", ex(None, "42")), ("41", ex(None, "42")), ("?", ex(None, "42"))])
    assert (right.correct, right.reward, right.outcome, right.detail) == (
        True,
        1.0,
        Outcome.CORRECT,
        f"{kind} scored 1",
    )
    assert (wrong.correct, wrong.reward, wrong.outcome, wrong.detail) == (
        False,
        -1.0,
        Outcome.WRONG,
        f"{kind} scored 0",
    )
    # None for an answer that was found is the verifier's failure, not the model's: error, reward 0
    assert (unjudged.correct, unjudged.reward, unjudged.outcome) == (None, 0.0, Outcome.ERROR)
    assert unjudged.detail == f"{kind} could not judge"


def test_a_verifier_that_writes_only_judge_grades_through_the_grader(third_party_verifiers):
    task = TaskSpec(name="t", grader={"verifier": {"kind": "judge_only"}, "default": {"correct": 1.0, "wrong": -1.0}})
    with Grader(task) as g:
        right, wrong, slow = g.grade_many([("42", ex(None, "42")), ("41", ex(None, "42")), ("?", ex(None, "42"))])
    assert (right.outcome, right.reward, right.detail) == (Outcome.CORRECT, 1.0, "judge-only looked at '42'")
    assert (wrong.outcome, wrong.reward, wrong.detail) == (Outcome.WRONG, -1.0, "judge-only looked at '41'")
    assert (slow.outcome, slow.reward, slow.detail) == (Outcome.TOO_LONG, -1.0, "judge-only: too long")


def test_a_verifier_subclass_that_writes_no_method_is_refused_when_loaded(third_party_verifiers):
    from phasecheck import plugins
    from phasecheck.errors import PluginError

    with pytest.raises(PluginError, match=r"local\[no_methods\]: breaks the verifier contract: implements none of"):
        plugins.load("verifiers", "no_methods")
