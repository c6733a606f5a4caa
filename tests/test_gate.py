"""The verdict gate: SFT refused on GRPO PHASE, INCONCLUSIVE, no verdict and a stale fingerprint;
allowed on a fresh GRADUATED verdict; --force lets it through with the refusals recorded."""

from __future__ import annotations

import json

import pytest

from phasecheck.errors import ExitCode, GateError
from phasecheck.results import Phase
from phasecheck.training.gate import check_gate
from support import make_task, write_verdict

pytestmark = pytest.mark.usefixtures("isolated_cache")


def _ident(task):
    from phasecheck.sampling.models import resolve_model

    return resolve_model(task.model).identity


def test_no_verdict_is_refused(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    with pytest.raises(GateError, match="no verdict recorded .* run `phasecheck check` first") as info:
        check_gate(task, "sft", model_identity=_ident(task))
    assert info.value.exit_code == ExitCode.GRPO_PHASE == 1


@pytest.mark.parametrize("status", [Phase.GRPO_PHASE, Phase.INCONCLUSIVE])
def test_not_graduated_is_refused(tmp_path, tiny_model_dir, status):
    task = make_task(tmp_path / "t", tiny_model_dir)
    write_verdict(task, status)
    with pytest.raises(GateError, match=f"is {status.value}, not GRADUATED"):
        check_gate(task, "sft", model_identity=_ident(task))


def test_fresh_graduated_verdict_allows_sft(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    path = write_verdict(task, Phase.GRADUATED)
    decision = check_gate(task, "sft", model_identity=_ident(task))
    assert decision.allowed and not decision.forced and decision.warning is None
    assert decision.verdict_path == str(path.resolve())
    assert decision.record()["verdict_status"] == "GRADUATED"


def test_stale_verdict_says_what_changed(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    write_verdict(task, Phase.GRADUATED)
    with open(task.data.eval, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "new", "prompt": "What is 9 + 9 ?", "reference": "18"}) + "\n")
    with pytest.raises(GateError, match=r"stale: data\.eval changed"):
        check_gate(task, "sft", model_identity=_ident(task))
    with pytest.raises(GateError, match=r"the model changed"):
        check_gate(task, "sft", model_identity="0123456789abcdef")


def test_stale_task_file_is_refused(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    write_verdict(task, Phase.GRADUATED)
    task.grader.default.correct = 5.0  # the grader's bands are part of what was judged
    with pytest.raises(GateError, match="the task file changed"):
        check_gate(task, "sft", model_identity=_ident(task))


def test_force_overrides_loudly_and_records_why(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    write_verdict(task, Phase.GRPO_PHASE)
    decision = check_gate(task, "sft", force=True, model_identity=_ident(task))
    assert decision.allowed and decision.forced
    assert "WARNING: --force" in decision.warning and "GRPO_PHASE" in decision.warning
    rec = decision.record()
    assert rec["forced"] is True and rec["verdict_status"] == "GRPO_PHASE" and rec["refusals"]


def test_grpo_is_always_allowed(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    assert check_gate(task, "grpo").allowed
    write_verdict(task, Phase.INCONCLUSIVE)
    decision = check_gate(task, "grpo")
    assert decision.allowed and decision.verdict.status is Phase.INCONCLUSIVE


def test_newest_verdict_wins(tmp_path, tiny_model_dir):
    task = make_task(tmp_path / "t", tiny_model_dir)
    write_verdict(task, Phase.GRADUATED, out=tmp_path / "old")
    write_verdict(task, Phase.GRPO_PHASE, out=tmp_path / "new", created_at="2026-01-02T00:00:00Z")
    with pytest.raises(GateError, match="GRPO_PHASE"):
        check_gate(task, "sft", model_identity=_ident(task))
