"""Shared fixtures: a tiny Llama model with a real tokenizer, built and saved offline; a private cache;
a check plugin that raises, registered. Builders that are plain functions live in support.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phasecheck import plugins

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "What is 2 + 3 ? The answer is 5 .",
    "Compute 7 * 6 . Answer : 42",
    "The hamiltonian H = p^2 / 2m + k x^2 / 2 gives dx/dt = p / m and dp/dt = - k x",
    "golden_hour_sun omega theta \\boxed{ } \\frac{1}{2} x y z",
    "I think it might be SPS DAT ZN-2_RHC supply pressure sensor discharge air temperature",
    "I do not know that tag . unknown",
    "0 1 2 3 4 5 6 7 8 9 10 + - * / = ( ) [ ] { } , . : ; ? !",
]


def build_tiny_model(path: Path, *, chat: bool = True, seed: int = 0, hidden: int = 32, heads: int = 4) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer trained on CORPUS, saved with save_pretrained;
    its head size is hidden / heads."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>" if chat else "<|endoftext|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=512,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny chat model directory (config, safetensors, tokenizer with a chat template)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture(scope="session")
def tiny_vllm_model_dir(tmp_path_factory) -> Path:
    """The tiny chat model with a head size of 32, the smallest vLLM's CPU attention takes."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat-hd32"), hidden=64, heads=2)


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory) -> Path:
    """A tiny model whose tokenizer has no chat template (raw-text prompts)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-base"), chat=False)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A sample and model cache of the test's own (modules opt in with usefixtures)."""
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def boom_plugin():
    """support.Boom registered as the check `boom`, as a third-party distribution would register it."""
    from importlib.metadata import EntryPoint

    plugins.register("checks", [EntryPoint(name="boom", value="support:Boom", group="phasecheck.checks")])
    yield
    plugins.unregister_all()
