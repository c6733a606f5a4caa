"""The openai engine against a real stdlib HTTP server on 127.0.0.1 serving the tiny fixture model,
including a failing, a malformed and a short-answering server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from phasecheck.errors import ConfigError, EngineError
from phasecheck.records import Example
from phasecheck.sampling import model_identity_for, sample_task
from phasecheck.task import TaskSpec


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHASECHECK_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    """Serves /v1/completions and /v1/chat/completions from the tiny model; `faults` scripts failures."""
    from phasecheck.sampling import load_model, render_prompt, resolve_model
    from phasecheck.sampling.hf import generate

    model, tok = load_model(resolve_model(str(tiny_model_dir)))
    lock = threading.Lock()
    state = {"faults": [], "requests": [], "auth": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, code, body: bytes):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state["requests"].append(req)
                state["auth"].append(self.headers.get("Authorization"))
                fault = state["faults"].pop(0) if state["faults"] else None
            if fault == "500":
                return self._send(500, b'{"error": "overloaded"}')
            if fault == "malformed":
                return self._send(200, b'{"choices": [')
            chat = self.path.endswith("/chat/completions")
            prompt = render_prompt(tok, req["messages"], None) if chat else req["prompt"]
            with lock:  # one generate at a time: torch on 2 shared cores
                gens = generate(
                    model,
                    tok,
                    [prompt],
                    n=req["n"],
                    seeds=[req["seed"]],
                    temperature=req["temperature"],
                    top_p=req["top_p"],
                    max_new_tokens=req["max_tokens"],
                    stop=req.get("stop") or (),
                )[0]
            if fault == "short":
                gens = gens[:-1]
            choices = [
                (
                    {"index": i, "message": {"role": "assistant", "content": g.text}}
                    if chat
                    else {"index": i, "text": g.text}
                )
                | {"finish_reason": g.finish_reason}
                for i, g in reversed(list(enumerate(gens)))
            ]  # out of order on purpose
            usage = {"completion_tokens": sum(g.n_tokens for g in gens)}
            self._send(200, json.dumps({"choices": choices, "usage": usage}).encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    state["model"], state["tok"] = model, tok
    yield state
    httpd.shutdown()


def _task(server, **opts):
    sampling = {
        "engine": "openai",
        "base_url": server["url"],
        "runs": 2,
        "n": 3,
        "temperature": 1.0,
        "max_new_tokens": 8,
        "seed": 5,
        "retries": 2,
        "backoff": 0.01,
        "concurrency": 4,
        **opts,
    }
    return TaskSpec(name="t", model="tiny", sampling=sampling)


EX = [
    Example(id="a", prompt="What is 2 + 3 ?"),
    Example(id="b", prompt="Compute 7 * 6 ."),
    Example(id="c", prompt=[{"role": "user", "content": "unknown tag ?"}]),
]


def test_chat_matches_local_sampling_and_caches(server):
    server["faults"].clear()
    res = sample_task(_task(server), EX, progress=False)
    assert res.engine == "openai" and res.model is None
    assert len(res.samples) == 3 * 2 * 3
    assert res.samples[0].model == model_identity_for(_task(server))
    # The server samples with the same seed blocks, so texts equal a local run of the same model.
    from phasecheck.sampling import render_prompt
    from phasecheck.sampling.base import SamplingPlan
    from phasecheck.sampling.hf import generate

    plan = SamplingPlan.from_spec(_task(server).sampling)
    block = plan.block_seed("b", 1)
    local = generate(
        server["model"],
        server["tok"],
        [render_prompt(server["tok"], "Compute 7 * 6 .", None)],
        n=3,
        seeds=[block],
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=8,
    )[0]
    got = [s for s in res.samples if s.example_id == "b" and s.run == 1]
    assert [s.completion for s in got] == [g.text for g in local] and [s.seed for s in got] == [
        block + i for i in range(3)
    ]
    assert {r["seed"] for r in server["requests"][-6:]} == {plan.block_seed(e.id, r) for e in EX for r in range(2)}
    before = len(server["requests"])
    again = sample_task(_task(server), EX, progress=False)
    assert again.samples == res.samples and len(server["requests"]) == before  # all from the cache


def test_completions_endpoint_and_api_key(server, monkeypatch):
    server["faults"].clear()
    monkeypatch.setenv("MY_KEY", "sekrit")
    res = sample_task(
        _task(server, endpoint="completions", api_key_env="MY_KEY"), EX[:2], use_cache=False, progress=False
    )
    assert len(res.samples) == 12 and server["auth"][-1] == "Bearer sekrit"
    assert server["requests"][-1]["prompt"] in {"What is 2 + 3 ?", "Compute 7 * 6 ."}
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        sample_task(_task(server, api_key_env="MY_KEY"), EX, progress=False)


@pytest.mark.parametrize("fault", ["500", "malformed", "short"])
def test_transient_faults_are_retried(server, fault):
    server["faults"][:] = [fault]
    clean = sample_task(_task(server, concurrency=1), EX[:1], use_cache=False, progress=False)
    assert not server["faults"]  # the fault was served, then retried
    server["faults"].clear()
    assert clean.samples == sample_task(_task(server), EX[:1], use_cache=False, progress=False).samples


@pytest.mark.parametrize(
    "fault,message", [("500", "HTTP 500"), ("malformed", "malformed JSON"), ("short", "2 choices, expected n=3")]
)
def test_persistent_faults_give_one_line_errors(server, fault, message):
    server["faults"][:] = [fault] * 3
    with pytest.raises(EngineError, match=message) as e:
        sample_task(_task(server, concurrency=1), EX[:1], use_cache=False, progress=False)
    server["faults"].clear()
    assert "\n" not in str(e.value) and "after 3 tries" in str(e.value)


def test_unreachable_server_is_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    task = TaskSpec(
        name="t",
        model="m",
        sampling={
            "engine": "openai",
            "base_url": f"http://127.0.0.1:{port}/v1",
            "retries": 1,
            "backoff": 0.01,
            "timeout": 2,
        },
    )
    with pytest.raises(EngineError, match="cannot reach server") as e:
        sample_task(task, EX[:1], use_cache=False, progress=False)
    assert "\n" not in str(e.value)


def test_needs_base_url_and_model():
    with pytest.raises(ConfigError, match="base_url"):
        sample_task(TaskSpec(name="t", model="m", sampling={"engine": "openai"}), EX, progress=False)
    with pytest.raises(ConfigError, match="served model name"):
        sample_task(TaskSpec(name="t", sampling={"engine": "openai", "base_url": "http://x/v1"}), EX, progress=False)
