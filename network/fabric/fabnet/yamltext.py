"""YAML without a YAML library: a small emitter for the files we generate, and a line-based
editor for Fabric's sample core.yaml / orderer.yaml (copied from the installed bundle at run time).

Python's standard library has no YAML module and nothing else may be assumed on the machines, so
the emitter writes a conservative subset (block mappings and sequences, every string double-quoted
the JSON way, which YAML accepts verbatim).
"""

from __future__ import annotations

import json
import re


def _scalar(v) -> str:
    if v is None:
        return '""'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", k) else json.dumps(k)


def dump(obj, indent: int = 0) -> str:
    """Emits `obj` (dicts, lists, scalars) as block YAML."""
    return "".join(_emit(obj, indent))


def _emit(obj, ind: int):
    pad = " " * ind
    if isinstance(obj, dict):
        if not obj:
            yield pad + "{}\n"
            return
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                yield f"{pad}{_key(k)}:\n"
                yield from _emit(v, ind + 2)
            elif isinstance(v, list) and v:
                yield f"{pad}{_key(k)}:\n"
                yield from _emit(v, ind + 2)
            elif isinstance(v, (dict, list)):
                yield f"{pad}{_key(k)}: {'{}' if isinstance(v, dict) else '[]'}\n"
            else:
                yield f"{pad}{_key(k)}: {_scalar(v)}\n"
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                body = "".join(_emit(item, ind + 2))
                yield pad + "- " + body[ind + 2:]
            elif isinstance(item, (dict, list)):
                yield pad + "- " + ("{}" if isinstance(item, dict) else "[]") + "\n"
            else:
                yield f"{pad}- {_scalar(item)}\n"
    else:
        yield pad + _scalar(obj) + "\n"


_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_.-]*):(\s*)(.*)$")


def _significant(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def set_values(text: str, values: dict[str, object]) -> str:
    """Sets dotted-path keys of a block-YAML document (a mapping of mappings, as Fabric's sample
    core.yaml and orderer.yaml are). A key's old value, including an indented block or list
    below it, is replaced; a missing key is added under its parent. Raises KeyError when a
    parent does not exist."""
    lines = text.splitlines()
    for path, value in values.items():
        lines = _set_one(lines, path.split("."), value)
    return "\n".join(lines) + "\n"


def _find(lines: list[str], parts: list[str]):
    """Index of the line holding `parts` and its indentation, or None."""
    stack: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if not _significant(line):
            continue
        m = _KEY_LINE.match(line)
        if not m:
            continue
        ind = len(m.group(1))
        if line.lstrip().startswith("- "):
            continue
        while stack and stack[-1][0] >= ind:
            stack.pop()
        stack.append((ind, m.group(2)))
        if [k for _, k in stack] == parts:
            return i, ind
    return None


def _block_end(lines: list[str], i: int, ind: int) -> int:
    """End (exclusive) of the value block belonging to the key at line i."""
    j = i + 1
    last = i
    while j < len(lines):
        line = lines[j]
        if _significant(line):
            cur = len(line) - len(line.lstrip())
            if cur > ind or (cur == ind and line.lstrip().startswith("- ")):
                last = j
            else:
                break
        j += 1
    return last + 1


def _render(key: str, value, ind: int) -> list[str]:
    pad = " " * ind
    if isinstance(value, list):
        if not value:
            return [f"{pad}{key}: []"]
        return [f"{pad}{key}:"] + [f"{pad}  - {_scalar(v)}" for v in value]
    return [f"{pad}{key}: {_scalar(value)}"]


def _set_one(lines: list[str], parts: list[str], value) -> list[str]:
    found = _find(lines, parts)
    if found:
        i, ind = found
        end = _block_end(lines, i, ind)
        m = _KEY_LINE.match(lines[i])
        # keep a trailing comment-free, single-line replacement
        return lines[:i] + _render(m.group(2), value, ind) + lines[end:]
    if len(parts) == 1:
        return lines + _render(parts[0], value, 0)
    parent = _find(lines, parts[:-1])
    if not parent:
        raise KeyError(".".join(parts[:-1]))
    i, ind = parent
    return lines[:i + 1] + _render(parts[-1], value, ind + 2) + lines[i + 1:]
