"""Reading a task file's YAML at a bounded cost, and saying where (file:line: field.path) a value is wrong."""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from .errors import ConfigError

__all__ = [
    "format_validation_error",
    "key_lines",
    "guard",
    "expanded_size",
    "MAX_TASK_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
]


def key_lines(node: yaml.Node, path: tuple = ()) -> dict[tuple, int]:
    """Map every key path in a composed YAML document to its 1-based line."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            lines[path + (key,)] = k.start_mark.line + 1
            for sub, line in key_lines(v, path + (key,)).items():
                lines.setdefault(sub, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            lines.update(key_lines(v, path + (i,)))
    return lines


# What reading a task file may cost. A task file is a page of settings; these are far above any real one.
MAX_TASK_BYTES = 1 << 20  # 1 MiB
MAX_YAML_DEPTH = 50  # nesting levels of mappings and sequences
MAX_YAML_NODES = 20_000  # nodes once aliases are expanded (the "billion laughs" shape)


def guard(text: str, where: str) -> None:
    """Refuse a task file whose reading would cost more than a task file can need: depth is checked on the
    event stream (PyYAML's composer recurses), alias expansion on the composed graph (shared, so cheap)."""
    depth, first_alias = 0, None
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(
                    f"{where}:{event.start_mark.line + 1}: YAML nested deeper than "
                    f"{MAX_YAML_DEPTH} levels; a task file needs only a few"
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent) and first_alias is None:
            first_alias = event.start_mark.line + 1
    if first_alias is None:
        return
    size = expanded_size(yaml.compose(text, Loader=yaml.SafeLoader), MAX_YAML_NODES)
    if size is None:
        raise ConfigError(
            f"{where}:{first_alias}: YAML aliases expand to more than {MAX_YAML_NODES:,} values "
            "(or refer to themselves); write the values out, or use fewer nested aliases"
        )


def expanded_size(root: yaml.Node | None, limit: int) -> int | None:
    """Number of nodes with every alias expanded, or None past `limit` or on a cycle (memoised per node)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise OverflowError
        on_path.add(key)
        children = (
            [c for kv in node.value for c in kv]
            if isinstance(node, yaml.MappingNode)
            else node.value
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                raise OverflowError
        on_path.discard(key)
        sizes[key] = total
        return total

    try:
        return size(root) if root is not None else 0
    except OverflowError:
        return None


def format_validation_error(
    err: ValidationError, where: str, lines: dict[tuple, int] | None = None, prefix: tuple = ()
) -> str:
    """The first validation error as one line: `FILE:LINE: field.path: message`."""
    first = err.errors()[0]
    loc = prefix + tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # pydantic puts union member names into loc ("str", "list[...]"); drop those for the user.
    loc = tuple(
        p for p in loc if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "float", "dict", "list"}))
    )
    field = ".".join(str(p) for p in loc) or "(top level)"
    line = None
    if lines:
        for n in range(len(loc), -1, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (check its spelling; `phasecheck schema` lists the fields)"
    elif first["type"] == "missing":
        msg = "required field is missing"
    at = f"{where}:{line}" if line else where
    return f"{at}: {field}: {msg}"
