"""The openai engine, the way past one machine: any OpenAI-compatible server (vllm serve, SGLang, TGI)
through /v1/chat/completions or /v1/completions, with bounded concurrency, timeouts and retries.
Only the standard library: urllib for HTTP, a thread pool for concurrency."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

from pydantic import Field

from ..errors import ConfigError, EngineError
from ..records import Example, Sample, prompt_text
from ..strict import Strict
from .base import EngineBase, Generation, SamplingPlan, Unit, messages_for, plan_units, run_units, units_to_samples

__all__ = ["OpenAIEngine", "parse_choices"]


class _Retry(Exception):
    """A failure worth another try (5xx, 429, network, malformed or short response)."""


def parse_choices(doc: Any, n: int, chat: bool) -> list[Generation]:
    """The n generations of a response, ordered by choice index; _Retry when it is malformed or short."""
    if not isinstance(doc, dict) or not isinstance(doc.get("choices"), list):
        raise _Retry("response has no `choices` list")
    choices = sorted(doc["choices"], key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    if len(choices) != n:
        raise _Retry(f"server returned {len(choices)} choices, expected n={n}")
    texts = []
    for c in choices:
        text = (
            (c.get("message") or {}).get("content")
            if chat and isinstance(c, dict)
            else (c.get("text") if isinstance(c, dict) else None)
        )
        if not isinstance(text, str):
            raise _Retry("a choice has no text")
        texts.append(text)
    usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    total_tokens = usage.get("completion_tokens")
    total_chars = sum(len(t) for t in texts) or 1
    out = []
    for c, text in zip(choices, texts):
        ids = c.get("token_ids") if isinstance(c.get("token_ids"), list) else []
        if ids:
            count = len(ids)
        elif isinstance(total_tokens, int):
            # The API reports tokens per request only: share them out by text length.
            count = round(total_tokens * len(text) / total_chars)
        else:
            count = 0
        reason = "length" if c.get("finish_reason") == "length" else "stop"
        out.append(Generation(text=text, token_ids=[int(i) for i in ids], finish_reason=reason, n_tokens=count))
    return out


class OpenAIEngine(EngineBase):
    """Sends one request per (example, run) with n and the first seed of that request's own block;
    vLLM-backed servers give choice i the seed seed+i, the same seeds as the local engines."""

    id: ClassVar[str] = "openai"
    needs_model: ClassVar[bool] = False

    class Params(Strict):
        base_url: str = Field(description="Server root, e.g. http://10.0.0.5:8000/v1.")
        model: str | None = Field(None, description="The served model name; default the task's `model`.")
        endpoint: Literal["chat", "completions"] = Field("chat", description="/chat/completions or /completions.")
        api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
        concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once.")
        timeout: float = Field(120.0, gt=0, description="Seconds per request.")
        retries: int = Field(3, ge=0, description="Extra tries for 5xx/429, network errors and bad responses.")
        backoff: float = Field(1.0, ge=0, description="First retry delay in seconds; doubles each try.")

    @classmethod
    def can_sample(cls, task: Any) -> bool:
        return "base_url" in task.sampling.options

    @classmethod
    def identity_for(cls, params: Any, task: Any) -> str | None:
        """The server and the model it serves (no request made)."""
        return cls(params, plan=SamplingPlan.from_spec(task.sampling), model=None, task=task).identity

    def __init__(self, params: Any, *, plan: Any, model: Any, task: Any) -> None:
        super().__init__(params, plan=plan, model=model, task=task)
        self.served = params.model or (task.model if task is not None else None) or (model.name if model else None)
        if not self.served:
            raise ConfigError(
                "sampling.model: the openai engine needs the served model name (sampling.model or the task's `model`)"
            )
        self.url = params.base_url.rstrip("/") + ("/chat/completions" if params.endpoint == "chat" else "/completions")
        self.key = os.environ.get(params.api_key_env)
        if self.key is None and "api_key_env" in params.model_fields_set:
            raise ConfigError(f"sampling.api_key_env: environment variable {params.api_key_env} is not set")
        self._abort = threading.Event()
        self.identity = "openai-" + hashlib.sha256(f"{self.url}\n{self.served}".encode()).hexdigest()[:16]

    def _body(self, ex: Example) -> str:
        plan, body = self.plan, {"model": self.served}
        if self.params.endpoint == "chat":
            body["messages"] = messages_for(ex.prompt, plan.system_prompt)
        else:
            text = prompt_text(ex.prompt)
            body["prompt"] = f"{plan.system_prompt}\n{text}" if plan.system_prompt else text
        body.update(n=plan.n, temperature=plan.temperature, top_p=plan.top_p, max_tokens=plan.max_new_tokens)
        if plan.stop:
            body["stop"] = list(plan.stop)
        return json.dumps(body, sort_keys=True, ensure_ascii=False)

    def _post(self, body: dict) -> dict:
        req = urllib.request.Request(
            self.url, data=json.dumps(body).encode("utf-8"), method="POST", headers={"Content-Type": "application/json"}
        )
        if self.key:
            req.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(req, timeout=self.params.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace").replace("\n", " ")
            if exc.code >= 500 or exc.code == 429:
                raise _Retry(f"HTTP {exc.code}: {detail}") from None
            raise EngineError(f"{self.url}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retry(f"cannot reach server ({reason.__class__.__name__}: {reason})") from None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retry("malformed JSON in response") from None

    def _request(self, unit: Unit) -> list[Generation]:
        body = json.loads(unit.prompt)
        body["seed"] = unit.seed
        last = ""
        for attempt in range(self.params.retries + 1):
            if self._abort.is_set():  # another request failed: stop rather than retry
                raise EngineError(f"{self.url}: aborted")
            try:
                return parse_choices(self._post(body), self.plan.n, self.params.endpoint == "chat")
            except _Retry as exc:
                last = str(exc)
                if attempt < self.params.retries:
                    time.sleep(self.params.backoff * (2**attempt))
        raise EngineError(f"{self.url}: {last} (after {self.params.retries + 1} tries)")

    def sample(self, examples: list[Example], *, store: Any = None, progress: Any = None) -> list[Sample]:
        units = plan_units(examples, self.plan, self._body)
        pool = ThreadPoolExecutor(max_workers=self.params.concurrency)
        size = self.params.concurrency * 4

        def batches(todo: list[Unit]) -> list[list[Unit]]:
            return [todo[i : i + size] for i in range(0, len(todo), size)]

        def generate_batch(batch: list[Unit]) -> list[list[Generation]]:
            return list(pool.map(self._request, batch))

        self._abort.clear()
        try:
            done, self.stats = run_units(units, generate_batch, batches, store=store, progress=progress, n=self.plan.n)
        except BaseException as exc:
            # Let requests in flight end (bounded by `timeout`) so none outlives this call; not on Ctrl-C.
            self._abort.set()
            pool.shutdown(wait=not isinstance(exc, KeyboardInterrupt), cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return units_to_samples(examples, self.plan, done, model=self.identity, engine=self.id)
