"""Entry-point plugin registry: find -> load -> validate contract, with "did you mean" errors."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ConfigError, PluginError

__all__ = ["GROUPS", "find", "load", "available", "validate_params", "plugin_label"]

GROUPS = {
    "checks": "phasecheck.checks",
    "engines": "phasecheck.engines",
    "verifiers": "phasecheck.verifiers",
    "reporters": "phasecheck.reporters",
}


def _contract_check(obj: Any) -> list[str]:
    problems = []
    for attr in ("id", "question", "Params"):
        if not hasattr(obj, attr):
            problems.append(f"missing class attribute `{attr}`")
    for method, signature in (
        ("measure", "(evidence, params)"),
        ("judge", "(measurement, params)"),
        ("reads_samples", "(params)"),
    ):
        if not callable(getattr(obj, method, None)):
            problems.append(f"missing method `{method}{signature}` (subclass phasecheck.api.Check)")
    return problems


def _contract_params_run(method: str) -> Callable[[Any], list[str]]:
    def check(obj: Any) -> list[str]:
        problems = []
        if not hasattr(obj, "Params"):
            problems.append("missing class attribute `Params` (a pydantic model)")
        if not callable(getattr(obj, method, None)):
            problems.append(f"missing method `{method}`")
        return problems

    return check


def _contract_engine(obj: Any) -> list[str]:
    from .sampling.base import EngineBase  # the engine contract's class attributes live on the base

    problems = _contract_params_run("sample")(obj)
    if not (inspect.isclass(obj) and issubclass(obj, EngineBase)):
        problems.append(
            "not a subclass of phasecheck.sampling.base.EngineBase (it declares needs_model, "
            "caches_samples, can_sample and identity_for)"
        )
    return problems


def _contract_verifier(obj: Any) -> list[str]:
    from .grading.base import contract_problems  # the verifier contract is documented on grading.base.Verifier

    return contract_problems(obj)


# What each group's plugin must provide (validated after load).
CONTRACTS: dict[str, Callable[[Any], list[str]]] = {
    "checks": _contract_check,
    "engines": _contract_engine,
    "verifiers": _contract_verifier,
    "reporters": _contract_params_run("render"),
}

# Injected entry points (tests, embedding); looked at before installed metadata.
_extra: dict[str, list[EntryPoint]] = {}


def register(group: str, eps: Iterable[EntryPoint]) -> None:
    """Add entry points to a group without installing a distribution (used by tests)."""
    _extra.setdefault(group, []).extend(eps)
    _installed.cache_clear()


def unregister_all() -> None:
    _extra.clear()
    _installed.cache_clear()


@functools.cache
def _installed(group: str) -> tuple[EntryPoint, ...]:
    eps = list(_extra.get(group, []))
    seen = {ep.name for ep in eps}
    for ep in entry_points(group=GROUPS[group]):
        if ep.name not in seen:  # first wins: an injected plugin shadows an installed one
            eps.append(ep)
            seen.add(ep.name)
    return tuple(eps)


def plugin_label(ep: EntryPoint) -> str:
    """`distribution[name]`, the way errors name a plugin."""
    dist = getattr(ep, "dist", None)
    return f"{dist.name if dist else 'local'}[{ep.name}]"


def available(group: str) -> list[str]:
    """Names of the plugins installed in a group (sorted)."""
    return sorted(ep.name for ep in _installed(group))


def find(group: str, name: str) -> EntryPoint:
    """Step 1: the entry point for `name`, or a ConfigError with close matches."""
    if group not in GROUPS:
        raise ValueError(f"unknown plugin group {group!r}")
    for ep in _installed(group):
        if ep.name == name:
            return ep
    names = available(group)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    singular = group[:-1]
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"installed: {', '.join(names) or 'none'}"
    )
    raise PluginError(f"unknown {singular} {name!r}; {hint}")


@functools.cache
def _load_ep(group: str, ep: EntryPoint) -> Any:
    label = plugin_label(ep)
    try:
        obj = ep.load()  # step 2
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not crash the run with a traceback
        raise PluginError(f"{label}: cannot load {ep.value} ({exc.__class__.__name__}: {exc})") from None
    problems = CONTRACTS[group](obj)  # step 3
    if group == "checks" and not problems and getattr(obj, "id", None) != ep.name:
        problems.append(f"its id {getattr(obj, 'id', None)!r} differs from the entry-point name")
    params = getattr(obj, "Params", None)
    if not problems and not (inspect.isclass(params) and issubclass(params, BaseModel)):
        problems.append("`Params` is not a pydantic model")
    if problems:
        raise PluginError(f"{label}: breaks the {group[:-1]} contract: {'; '.join(problems)}")
    return obj


def load(group: str, name: str) -> Any:
    """find -> load -> validate contract; returns the plugin class."""
    return _load_ep(group, find(group, name))


def validate_params(plugin: Any, params: dict | None, where: str) -> BaseModel:
    """Second config stage: the plugin's own Params. `where` is "FILE: field.path" or "field.path";
    errors read `FILE: field.path.key: message`."""
    from .yaml_read import format_validation_error

    source, _, field = where.rpartition(": ")
    try:
        return plugin.Params.model_validate(params or {})
    except ValidationError as exc:
        prefix = tuple(field.split(".")) if field else ()
        raise ConfigError(format_validation_error(exc, source or "task file", prefix=prefix)) from None
