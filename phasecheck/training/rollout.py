"""GRPO rollouts: G completions per prompt from the live policy, through a sampling engine.

`transformers` (the default, CPU or one GPU) samples the in-memory policy with sampling.hf.generate.
`vllm` keeps an engine in this process beside the policy (TRL's vllm_mode="colocate") and loads the
policy's current weights into it before each rollout. Other engines (openai, replay) cannot sample
weights that change every step; for them GRPO samples the policy with transformers."""

from __future__ import annotations

from typing import Any, Protocol

from ..task import TaskSpec

__all__ = [
    "Rollout",
    "HFRollout",
    "VLLMRollout",
    "rollout_for",
    "policy_weights",
    "as_rollout_rows",
    "refresh_tied_head",
]


class Rollout(Protocol):
    """Samples `n` completions per rendered prompt from the in-memory policy.

    Returns, per prompt, n (text, completion_token_ids, finished) triples; `finished` is False when
    the completion hit max_new_tokens. Prompt j's completions use seeds seed + j*n ... seed + j*n + n-1."""

    def __call__(
        self, model, tokenizer, prompts: list[str], *, n: int, seed: int, temperature: float, max_new_tokens: int
    ) -> list[list[tuple[str, list[int], bool]]]: ...


def as_rollout_rows(generations, eos: int | None) -> list[list[tuple[str, list[int], bool]]]:
    """Per prompt, Generations as (text, token_ids, finished) triples. A completion that stopped keeps
    its eos as a trained token (the model must learn to stop), appended when the engine left it out."""
    rows = []
    for gens in generations:
        row = []
        for g in gens:
            ids = list(g.token_ids)
            finished = g.finish_reason != "length"
            if finished and eos is not None and (not ids or ids[-1] != eos):
                ids.append(eos)
            row.append((g.text, ids, finished))
        rows.append(row)
    return rows


class HFRollout:
    """The default rollout: phasecheck.sampling.hf.generate on the live policy (CPU or one GPU)."""

    def __call__(self, model, tokenizer, prompts, *, n, seed, temperature, max_new_tokens):
        from ..sampling.hf import generate

        out = generate(
            model,
            tokenizer,
            prompts,
            n=n,
            seeds=seed,
            temperature=temperature,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
        )
        return as_rollout_rows(out, tokenizer.eos_token_id)


def policy_weights(model):
    """(name, tensor) for every weight of the policy as a plain transformers model would name it, with
    LoRA adapters folded in (common.folded_weight: new tensors, live weights untouched). This is
    what vLLM's `reload_weights` takes."""
    if not hasattr(model, "get_base_model"):
        for name, param in model.named_parameters():
            yield name, param.detach()
        return
    from peft.tuners.lora import LoraLayer

    from .common import folded_weight

    inner = model.get_base_model()
    folded = {
        f"{name}.weight": folded_weight(module)
        for name, module in inner.named_modules()
        if isinstance(module, LoraLayer)
    }
    for name, param in inner.named_parameters():
        if ".lora_" in name:
            continue
        plain = name.replace(".base_layer", "")
        yield plain, folded.get(plain, param.detach())


class VLLMRollout:
    """Rollouts on a vLLM engine in this process, beside the policy (TRL's vllm_mode="colocate").

    Before each rollout the policy's weights, LoRA folded in, go through vLLM's own reload path (the
    worker's `reload_weights`, checkpoint format), which re-runs each layer's post-load processing: the
    CPU backend repacks its linear weights there, so writing into the live parameters
    (`model.load_weights` after start-up) fails. A head tied to the embeddings receives no weights of
    its own, so its processing is run again by hand, else it would sample from the old head. Then the
    prefix cache is reset. The engine runs with distributed_executor_backend="external_launcher" so its
    model lives in this process, and takes `gpu_memory_utilization` 0.3 unless the task sets it (the
    policy shares the GPU)."""

    def __init__(self, task: TaskSpec, model_path: Any):
        import importlib.util

        from ..errors import ConfigError
        from ..plugins import validate_params
        from ..sampling.vllm_engine import INSTALL_HINT, VLLMEngine

        if importlib.util.find_spec("vllm") is None:
            # Before the policy loads or anything is written: fail at once.
            raise ConfigError(
                f"sampling.engine vllm: vllm is not installed ({INSTALL_HINT}); "
                "GRPO rollouts need it, or sampling.engine transformers"
            )
        where = f"{task.source}: sampling" if task.source else "sampling"
        self.params = validate_params(VLLMEngine, task.sampling.options, where)
        if "gpu_memory_utilization" not in self.params.model_fields_set:
            self.params = self.params.model_copy(update={"gpu_memory_utilization": 0.3})
        self.model_path = model_path
        self.seed = task.sampling.seed
        self.llm = None

    def _engine(self):
        if self.llm is None:
            import os
            import socket

            from ..sampling.vllm_engine import start_llm

            # external_launcher reads the torch.distributed rendezvous of this (single) process.
            for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
                os.environ.setdefault(key, value)
            if "MASTER_PORT" not in os.environ:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    os.environ["MASTER_PORT"] = str(sock.getsockname()[1])
            self.llm = start_llm(
                self.model_path, self.params, seed=self.seed, distributed_executor_backend="external_launcher"
            )
        return self.llm

    def push(self, model) -> None:
        """Load the policy's current weights into the engine and drop its cached prefixes."""
        from ..sampling.vllm_engine import vllm_failure

        llm = self._engine()
        try:
            llm.collective_rpc(
                "reload_weights", kwargs={"weights_iterator": policy_weights(model), "is_checkpoint_format": True}
            )
            llm.apply_model(refresh_tied_head)
        except Exception as exc:  # noqa: BLE001 - a failure inside vLLM is one line, exit 3
            raise vllm_failure("cannot load the policy's weights", exc) from None
        llm.reset_prefix_cache()

    @staticmethod
    def request_kwargs(count: int, *, n: int, seed: int, temperature: float, max_new_tokens: int) -> list[dict]:
        """vllm.SamplingParams keyword arguments for `count` prompts: prompt j gets the seed block
        seed + j*n (vLLM gives its sample i the seed + i), as the transformers rollout does."""
        from ..sampling.base import SamplingPlan
        from ..sampling.vllm_engine import sampling_kwargs

        plan = SamplingPlan(runs=1, n=n, temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens)
        return [sampling_kwargs(plan, seed + j * n) for j in range(count)]

    def __call__(self, model, tokenizer, prompts, *, n, seed, temperature, max_new_tokens):
        from ..sampling.vllm_engine import generate

        self.push(model)  # starts the engine first: a missing vllm is one ConfigError line
        requests = self.request_kwargs(
            len(prompts), n=n, seed=seed, temperature=temperature, max_new_tokens=max_new_tokens
        )
        return as_rollout_rows(generate(self._engine(), tokenizer, list(prompts), requests, n), tokenizer.eos_token_id)

    def close(self) -> None:
        """Shut the engine down (its memory and threads), if it was started."""
        if self.llm is not None:
            from ..sampling.vllm_engine import stop_llm

            stop_llm(self.llm)
            self.llm = None


def refresh_tied_head(model) -> None:
    """Re-run the post-load processing of an output head tied to the input embeddings (vLLM's
    `lm_head.weight is embed_tokens.weight`): a reload fills the shared tensor through the embeddings,
    and the head's own processed copy (the CPU backend's packed GEMM weight) would stay stale."""
    head = getattr(model, "lm_head", None)
    inner = getattr(model, "model", None)
    embed = getattr(inner, "embed_tokens", None)
    method = getattr(head, "quant_method", None)
    if (
        head is None
        or embed is None
        or method is None
        or getattr(head, "weight", None) is not getattr(embed, "weight", None)
    ):
        return
    method.process_weights_after_loading(head)


def rollout_for(task: TaskSpec, model_path: Any) -> Rollout:
    """The task's rollout: vLLM when sampling.engine is vllm, else transformers on the live policy."""
    if task.sampling.engine == "vllm":
        return VLLMRollout(task, model_path)
    return HFRollout()
