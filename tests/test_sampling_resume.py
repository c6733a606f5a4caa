"""A sampling run killed mid-way (SIGKILL or SIGINT) resumes from the cache to exactly the samples
an uninterrupted run gives, without re-sampling finished batches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from phasecheck.records import Example
from phasecheck.sampling import sample_task
from phasecheck.task import TaskSpec

# Distinct prompts: identical (prompt, seed) blocks share one cache entry, which would blur the counts.
PROMPTS = [f"{p} {k}" for k in range(2) for p in ("What is 2 + 3 ?", "Compute 7 * 6 .", "H = p^2 / 2m gives", "tag ?")]

SCRIPT = """
import json, os, signal, sys, time
# A shell without job control starts background commands with SIGINT ignored, and Python keeps an
# ignored SIGINT: CI run in the background would then never see the interrupt this test sends.
signal.signal(signal.SIGINT, signal.default_int_handler)
from phasecheck.records import Example
from phasecheck.sampling import sample_task, hf
from phasecheck.task import TaskSpec
slow = hf._generate_batch
calls = [0]
def paced(*a, **k):
    # Two batches go through; the third waits, so the kill always lands mid-run with two written
    # (a timing window alone let a fast run finish all 16 before its signal came).
    calls[0] += 1
    time.sleep(60 if calls[0] > 2 else 0.05)
    return slow(*a, **k)
hf._generate_batch = paced
task = TaskSpec.model_validate(json.loads(sys.argv[1]))
ex = [Example(id=f"e{i}", prompt=p) for i, p in enumerate(json.loads(sys.argv[2]))]
sample_task(task, ex, progress=False)
"""


def test_killed_runs_resume_to_the_uninterrupted_set(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "ref-cache"))
    ex = [Example(id=f"e{i}", prompt=p) for i, p in enumerate(PROMPTS)]
    # batch_tokens this small puts one prompt (n rows) in each batch: 8 prompts x 2 runs = 16 batches.
    task = TaskSpec(
        name="t",
        model=str(tiny_model_dir),
        sampling={"runs": 2, "n": 3, "temperature": 1.0, "max_new_tokens": 10, "seed": 7, "batch_tokens": 64},
    )
    reference = [s.to_dict() for s in sample_task(task, ex, use_cache=False, progress=False).samples]
    procs = {}
    for sig in (signal.SIGKILL, signal.SIGINT):  # both at once: the start-up (imports) dominates
        cache = tmp_path / f"cache-{sig.name}"
        env = {**os.environ, "PHASECHECK_CACHE_DIR": str(cache)}
        procs[sig] = (
            cache,
            subprocess.Popen(
                [sys.executable, "-c", SCRIPT, task.model_dump_json(), json.dumps(PROMPTS)],
                env=env,
                stderr=subprocess.PIPE,
            ),
        )
    for sig, (cache, proc) in procs.items():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(cache.glob("samples/*/batch-*.json"))) < 2:
            time.sleep(0.02)
        proc.send_signal(sig)
    for sig, (cache, proc) in procs.items():
        proc.wait(timeout=30)
        written = len(list(cache.glob("samples/*/batch-*.json")))
        assert written == 2, (sig, proc.stderr.read().decode()[-2000:])
        if sig == signal.SIGINT:
            assert proc.returncode != 0 and b"KeyboardInterrupt" in proc.stderr.read()
        monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(cache))
        resumed = sample_task(task, ex, progress=False)
        assert resumed.stats["cached"] == written and resumed.stats["generated"] == 16 - written
        assert [s.to_dict() for s in resumed.samples] == reference
