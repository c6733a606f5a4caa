"""Set-up shared by the GRPO benchmarks, not a benchmark itself: tests/conftest.py's tiny random Llama
and a task file around it, in one scratch directory, offline."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tiny_task(root: Path, template: str, prompts: list[str], *, seed: int = 0, **fields):
    """Build the model under root/model, write eval.jsonl (ids p0, p1, ...) and task.yaml (`template`
    formatted with model= and `fields`); return the loaded TaskSpec and the model directory."""
    # Before conftest pulls in transformers, which reads HF_HUB_OFFLINE at import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PHASECHECK_CACHE_DIR", str(root / "cache"))
    spec = importlib.util.spec_from_file_location("_pc_conftest", ROOT / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    from phasecheck.task import load_task

    model_dir = conftest.build_tiny_model(root / "model", seed=seed)
    (root / "eval.jsonl").write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts))
    )
    (root / "task.yaml").write_text(template.format(model=model_dir, **fields))
    return load_task(root / "task.yaml"), model_dir
