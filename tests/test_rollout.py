"""GRPO rollouts: which engine a task's rollouts use, the weights a vLLM engine is given (names a plain
model has, LoRA folded in, live weights untouched), the requests it is sent; the real colocated engine,
CPU or GPU, where vLLM is installed (require_vllm: make test-vllm)."""

from __future__ import annotations

import copy
import importlib.util
from types import SimpleNamespace

import pytest

from phasecheck.errors import ConfigError
from phasecheck.sampling.base import Generation
from phasecheck.task import LoraSpec
from phasecheck.training.rollout import (
    HFRollout,
    VLLMRollout,
    as_rollout_rows,
    policy_weights,
    refresh_tied_head,
    rollout_for,
)
from support import make_task, needs_vllm

pytestmark = pytest.mark.usefixtures("isolated_cache")

torch = pytest.importorskip("torch")
HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def _lora_policy(model_dir):
    from transformers import AutoModelForCausalLM

    from phasecheck.training.common import Policy, apply_lora

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    policy = apply_lora(Policy(model, None, str(model_dir), None, lora=False), LoraSpec(r=2, alpha=4))
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.1)
    return policy.model


def test_policy_weights_are_the_merged_model_under_plain_names(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    peft_model = _lora_policy(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    pushed = dict(policy_weights(peft_model))
    merged = dict(copy.deepcopy(peft_model).merge_and_unload().named_parameters())
    plain = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    assert set(pushed) == set(plain) == set(merged)
    for name, tensor in pushed.items():
        assert torch.allclose(tensor, merged[name], atol=1e-6), name
    # The adapter is in what was pushed, and the live weights did not move.
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(pushed[q], plain[q], atol=1e-4)
    assert all(torch.equal(p, before[n]) for n, p in peft_model.named_parameters())


def test_policy_weights_of_a_plain_model_are_its_parameters(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    pushed = list(policy_weights(model))
    assert [n for n, _ in pushed] == [n for n, _ in model.named_parameters()]
    assert all(t.data_ptr() == p.data_ptr() for (_, t), (_, p) in zip(pushed, model.named_parameters()))


def _sampling(task, **fields):
    """The task with sampling fields (engine options included) set, as a task file would set them."""
    spec = type(task.sampling).model_validate({**task.sampling.model_dump(), **fields})
    return task.model_copy(update={"sampling": spec})


@pytest.fixture
def vllm_importable(monkeypatch):
    """Let VLLMRollout be built here (it checks for vllm first); nothing below starts an engine."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: real("json") if name == "vllm" else real(name, *a)
    )


def test_rollout_for_picks_the_engine_and_validates_its_options(tmp_path, tiny_model_dir, vllm_importable):
    task = make_task(tmp_path / "hf", tiny_model_dir)
    assert isinstance(rollout_for(task, tiny_model_dir), HFRollout)
    for engine in ("openai", "replay"):
        assert isinstance(rollout_for(_sampling(task, engine=engine), tiny_model_dir), HFRollout)
    roll = rollout_for(_sampling(task, engine="vllm"), tiny_model_dir)
    assert isinstance(roll, VLLMRollout) and roll.llm is None  # started on first use only
    assert roll.params.gpu_memory_utilization == 0.3  # the policy shares the GPU
    set_it = _sampling(task, engine="vllm", gpu_memory_utilization=0.5, tensor_parallel_size=2)
    assert rollout_for(set_it, tiny_model_dir).params.gpu_memory_utilization == 0.5
    with pytest.raises(ConfigError, match="gpu_memory_utilisation"):
        rollout_for(_sampling(task, engine="vllm", gpu_memory_utilisation=0.5), tiny_model_dir)


def test_vllm_requests_use_the_seed_blocks_of_the_transformers_rollout():
    kws = VLLMRollout.request_kwargs(3, n=4, seed=100, temperature=0.9, max_new_tokens=16)
    assert [k["seed"] for k in kws] == [100, 104, 108]
    assert kws[0] == {"n": 4, "seed": 100, "temperature": 0.9, "top_p": 1.0, "max_tokens": 16}


def test_push_reloads_the_policy_through_vllm_then_resets_its_prefix_cache(tmp_path, tiny_model_dir, vllm_importable):
    """The calls VLLMRollout makes on vllm.LLM, recorded (the real engine: the require_vllm tests below)."""
    calls = []

    def collective_rpc(method, kwargs):
        calls.append((method, [name for name, _ in kwargs["weights_iterator"]], kwargs["is_checkpoint_format"]))

    llm = SimpleNamespace(
        collective_rpc=collective_rpc,
        apply_model=lambda fn: calls.append(("apply_model", fn)),
        reset_prefix_cache=lambda: calls.append(("reset_prefix_cache",)),
    )
    roll = rollout_for(_sampling(make_task(tmp_path / "v", tiny_model_dir), engine="vllm"), tiny_model_dir)
    roll.llm = llm
    peft_model = _lora_policy(tiny_model_dir)
    roll.push(peft_model)
    assert [c[0] for c in calls] == ["reload_weights", "apply_model", "reset_prefix_cache"]
    assert calls[0][1] == [n for n, _ in policy_weights(peft_model)] and calls[0][2] is True
    assert not any("lora" in n or "base_layer" in n for n in calls[0][1])
    assert calls[1][1] is refresh_tied_head


def test_rollout_rows_keep_the_eos_a_finished_completion_stopped_on():
    gens = [
        [
            Generation(text="7", token_ids=[11], finish_reason="stop", n_tokens=1),
            Generation(text="7 8", token_ids=[11, 12], finish_reason="length", n_tokens=2),
            Generation(text="", token_ids=[11, 2], finish_reason="stop", n_tokens=2),
        ]
    ]
    assert as_rollout_rows(gens, 2) == [[("7", [11, 2], True), ("7 8", [11, 12], False), ("", [11, 2], True)]]


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed")
def test_grpo_on_vllm_without_vllm_is_one_config_error(tmp_path, tiny_model_dir):
    from click.testing import CliRunner

    from phasecheck.cli import cli

    make_task(tmp_path / "nv", tiny_model_dir, grpo="{epochs: 1, batch_prompts: 4, group_size: 2}")
    text = (tmp_path / "nv" / "task.yaml").read_text().replace("sampling: {", "sampling: {engine: vllm, ")
    (tmp_path / "nv" / "task.yaml").write_text(text)
    result = CliRunner().invoke(cli, ["train", "grpo", str(tmp_path / "nv" / "task.yaml")])
    assert result.exit_code == 2, result.output
    assert "vllm is not installed" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "nv" / "runs").exists()  # refused before anything was written


PROMPTS = ["What is 1 + 1 ?", "What is 2 + 2 ?", "Compute 7 * 6 ."]


def _greedy(roll, net, tok):
    """Greedy token ids per prompt from the rollout, rendered through the chat template."""
    from phasecheck.sampling.base import render_prompt

    texts = [render_prompt(tok, p, None) for p in PROMPTS]
    return [row[0][1] for row in roll(net, tok, texts, n=1, seed=0, temperature=0.0, max_new_tokens=8)]


@pytest.fixture(scope="module")
def colocated(tmp_path_factory, tiny_vllm_model_dir):
    """One colocated engine on the head-size-32 tiny model (tied embeddings), shared by the tests below."""
    task = make_task(
        tmp_path_factory.mktemp("colocated"),
        tiny_vllm_model_dir,
        grpo="{epochs: 1, batch_prompts: 4, group_size: 2, learning_rate: 1.0e-2}",
    )
    task = _sampling(task, engine="vllm")
    roll = rollout_for(task, tiny_vllm_model_dir)
    yield task, roll
    roll.close()


@needs_vllm
@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_after_the_push_the_engine_generates_what_the_policy_generates(
    colocated, tiny_vllm_model_dir, tmp_path, monkeypatch, lora
):
    """Two GRPO steps through the colocated engine, then a policy moved far from the base (LoRA B, or
    for full fine-tuning the embeddings, which are also the tied output head): after the push the
    engine's greedy completions are the transformers rollout's on the same weights, and not the base's."""
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))
    from transformers import AutoModelForCausalLM

    from phasecheck.training.grpo import train_grpo

    task, roll = colocated
    grpo = "{epochs: 1, batch_prompts: 4, group_size: 2, learning_rate: 1.0e-2" + (
        ", lora: {r: 2, alpha: 4}}" if lora else "}"
    )
    task = _sampling(make_task(tmp_path / "t", tiny_vllm_model_dir, grpo=grpo), engine="vllm")
    res = train_grpo(task, max_steps=2, rollout=roll)
    assert res.steps == 2
    from phasecheck.training.checkpoint import load_trainable

    trained, tok, _, _ = load_trainable(res.checkpoint)
    assert _greedy(roll, trained, tok) == _greedy(HFRollout(), trained, tok)
    base = AutoModelForCausalLM.from_pretrained(tiny_vllm_model_dir, dtype=torch.float32).eval()
    base_ids = _greedy(roll, base, tok)
    assert base_ids == _greedy(HFRollout(), base, tok)
    if lora:
        net = _lora_policy(tiny_vllm_model_dir)
        with torch.no_grad():
            for name, p in net.named_parameters():
                if "lora_B" in name:
                    p.mul_(30)
    else:
        net = AutoModelForCausalLM.from_pretrained(tiny_vllm_model_dir, dtype=torch.float32).eval()
        # Every matrix redrawn: the embeddings alone would keep a random tied model repeating its last
        # prompt token, which the stale head predicts too.
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in net.parameters():
                if p.ndim == 2:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        assert net.get_output_embeddings().weight is net.get_input_embeddings().weight
    ours = _greedy(roll, net, tok)
    assert ours == _greedy(HFRollout(), net, tok)
    assert ours != base_ids  # a stale engine would still give these
