"""The sample cache: keys, atomic per-batch files, and what it does with files it cannot read."""

from __future__ import annotations

from phasecheck.sampling.base import Generation
from phasecheck.sampling.store import SampleStore, cache_root


def _gens(tag, n=2):
    return [Generation(text=f"{tag}{i}", token_ids=[i, i + 1], finish_reason="stop", n_tokens=2) for i in range(n)]


def test_cache_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    assert SampleStore(model="m", engine="e", params="p").dir.parent == tmp_path / "samples"


def test_put_get_and_reload(tmp_path):
    store = SampleStore(tmp_path, model="abc", engine="transformers", params="k1")
    assert store.get("p", 0) is None
    path = store.put_many([("p", 0, _gens("x")), ("q", 0, _gens("y"))])
    assert path.name.startswith("batch-") and not list(store.dir.glob(".*tmp"))
    assert [g.text for g in store.get("p", 0)] == ["x0", "x1"]
    assert store.get("p", 2) is None and store.get("P", 0) is None  # seed and prompt are in the key
    again = SampleStore(tmp_path, model="abc", engine="transformers", params="k1")
    assert len(again) == 2 and again.get("q", 0) == _gens("y")
    # Another model, engine or params key sees nothing.
    for kw in ({"model": "abd"}, {"engine": "vllm"}, {"params": "k2"}):
        args = {"model": "abc", "engine": "transformers", "params": "k1", **kw}
        assert SampleStore(tmp_path, **args).get("p", 0) is None


def test_unreadable_batch_file_is_skipped_not_fatal(tmp_path):
    store = SampleStore(tmp_path, model="m", engine="e", params="p")
    store.put_many([("p", 0, _gens("x"))])
    (store.dir / "batch-garbage.json").write_text("{not json")
    (store.dir / "batch-oldversion.json").write_text('{"version": 0, "entries": {}}')
    again = SampleStore(tmp_path, model="m", engine="e", params="p")
    assert again.skipped_files == 2 and again.get("p", 0) == _gens("x")


def test_empty_batch_writes_nothing(tmp_path):
    store = SampleStore(tmp_path, model="m", engine="e", params="p")
    assert store.put_many([]) is None and not store.dir.exists()
