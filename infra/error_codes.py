"""Which error codes each command and query can return, read from the code itself.

Every function of a service's package (and of ``shared/``) is read with ``ast``: the codes it raises
directly (``DomainError("code", ...)``, ``NotFound(...)``, ``NoSlot("code")`` and the services' small
helpers around them) and the names it calls. A request's codes are those of its handler and of
everything it calls, by name (an over-approximation: a name defined twice counts both). The runtime's
own codes (validation, ``internal_error``, identity) apply to every request and are listed apart.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# call name -> how it names its code: the first positional argument, or a fixed code
RAISERS: dict[str, str | None] = {
    "DomainError": None,
    "_err": None,
    "NoSlot": None,
    "NotFound": "not_found",
    "_missing": "plan_incomplete",
}
# code-carrying calls outside request replies (intake rejections), and literal FieldErrors
OTHER_CODE_CALLS = {"Problem": 1, "InvalidHetu": 0}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _raised(call: ast.Call) -> str | None:
    name = _name(call.func)
    if name not in RAISERS:
        return None
    fixed = RAISERS[name]
    if fixed is not None:
        return fixed
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _files(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


@cache
def _index(package: str) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Function name -> (codes raised in it, names it calls), over one service's package. The shared
    runtime raises no domain code; leaving it out keeps its generic names (execute, close, run) from
    joining unrelated functions."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for path in _files(package):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            codes, calls = out.setdefault(node.name, (set(), set()))
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    code = _raised(inner)
                    if code is not None:
                        codes.add(code)
                    name = _name(inner.func)
                    if name:
                        calls.add(name)
    return {k: (frozenset(c), frozenset(n)) for k, (c, n) in out.items()}


def codes_of(handler: object) -> list[str]:
    """The domain codes a request handler can return (its own and its callees'), sorted."""
    module = inspect.getmodule(handler)
    assert module is not None
    package = "/".join(module.__name__.split(".")[:2])  # services/<name>
    index = _index(package)
    seen: set[str] = set()
    codes: set[str] = set()
    todo = [getattr(handler, "__name__", "")]
    while todo:
        name = todo.pop()
        if name in seen or name not in index:
            continue
        seen.add(name)
        raised, calls = index[name]
        codes |= raised
        todo.extend(calls)
    return sorted(codes)


def codes_in_source() -> dict[str, list[str]]:
    """Every literal error code in services/ and shared/ -> where (file:line): raised refusals,
    intake problems, hetu reasons and literal ``FieldError(code=...)``."""
    out: dict[str, list[str]] = {}
    for path in [*_files("services"), *_files("shared")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            code: object = _raised(node)
            name = _name(node.func)
            if code is None and name in OTHER_CODE_CALLS:
                arg = node.args[OTHER_CODE_CALLS[name]] if len(node.args) > OTHER_CODE_CALLS[name] else None
                if isinstance(arg, ast.Constant):
                    code = arg.value
            if code is None and name == "FieldError":
                literal = [k.value for k in node.keywords if k.arg == "code" and isinstance(k.value, ast.Constant)]
                code = literal[0].value if literal else None
            if isinstance(code, str):
                out.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return out
