"""The sample cache: blocks of n generations keyed by (model identity, engine, sampling params,
rendered prompt, seed), one atomically written file per batch so a killed run resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_write_text
from .base import Generation

__all__ = ["cache_root", "SampleStore"]

_VERSION = 1


def cache_root() -> Path:
    """PHASECHECK_CACHE_DIR, or the per-user cache directory of phasecheck."""
    env = os.environ.get("PHASECHECK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("phasecheck"))


def _key(prompt: str, seed: int) -> str:
    # A block is keyed by its own first seed, which SamplingPlan.block_seed derives from the task seed,
    # example id and run: a block cached under another seed plan is never served for this one.
    return hashlib.sha256(json.dumps([prompt, seed]).encode("utf-8")).hexdigest()


class SampleStore:
    """One directory per (engine, model identity, params key); each batch is a JSON file of
    {key: [generation, ...]}. Files appear whole or not at all (temp file + rename)."""

    def __init__(self, root: str | Path | None = None, *, model: str, engine: str, params: str) -> None:
        root = Path(root) if root is not None else cache_root() / "samples"
        safe_model = "".join(c if c.isalnum() else "_" for c in model)[:40]
        self.dir = root / f"{engine}-{safe_model}-{params}"
        self._index: dict[str, list[dict]] = {}
        self.skipped_files = 0
        self._load()

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        for f in sorted(self.dir.glob("batch-*.json")):
            try:
                doc = json.loads(f.read_text(encoding="utf-8"))
                if doc.get("version") != _VERSION:
                    raise ValueError("version")
                self._index.update(doc["entries"])
            except (OSError, ValueError, KeyError, TypeError):
                # Writes are atomic, so only a foreign or hand-edited file lands here: re-sample its keys.
                self.skipped_files += 1

    def __len__(self) -> int:
        return len(self._index)

    def get(self, prompt: str, seed: int) -> list[Generation] | None:
        """The cached block for (prompt, first seed), or None."""
        hit = self._index.get(_key(prompt, seed))
        if hit is None:
            return None
        try:
            return [Generation.from_dict(d) for d in hit]
        except (KeyError, TypeError, ValueError):
            return None

    def put_many(self, items: Iterable[tuple[str, int, list[Generation]]]) -> Path | None:
        """Write one batch of blocks as one file (atomically) and add them to the index."""
        entries = {_key(p, s): [g.to_dict() for g in gens] for p, s, gens in items}
        if not entries:
            return None
        name = hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:24]
        path = atomic_write_text(
            self.dir / f"batch-{name}.json", json.dumps({"version": _VERSION, "entries": entries}, ensure_ascii=False)
        )
        self._index.update(entries)
        return path
