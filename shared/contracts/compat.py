"""Snapshots of every published event version's JSON schema, and the compatibility rule.

A published event version (``<event>.v<N>``) may only grow: new optional fields are fine, because
consumers parse tolerantly (``extra="ignore"``) and old events in the streams still validate. It may
not lose a field, change a field's type, format, allowed values or constraints, or make a field
required: a consumer of the old shape, or a replay of events already stored, would break. Such a
change is a new version (``.v<N+1>``) published alongside the old one.

    python -m shared.contracts.compat check   # list breaking changes against docs/contracts/
    python -m shared.contracts.compat write   # refresh the snapshots (refuses breaking changes)

The snapshots live in ``docs/contracts/<subject>.json``, one file per published subject (the events
and the front door's intake submission). A test fails on a breaking change and when a snapshot is
out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import EVENTS, INTAKE_SUBJECT, RETIRED_EVENTS, ReferralSubmission

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "docs" / "contracts"
PERSONAL_MARK = "x-koolle-personal"
# Changing any of these on a field is a changed type for a consumer of the old version.
SHAPE_KEYS = (
    "type",
    "format",
    "enum",
    "const",
    "pattern",
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxItems",
    "minItems",
)


def published() -> dict[str, dict[str, Any]]:
    """Every published subject and its current JSON schema."""
    out = {INTAKE_SUBJECT: ReferralSubmission.model_json_schema()}
    for e in EVENTS:
        out[e.subject] = e.model.model_json_schema()
    return dict(sorted(out.items()))


def load_snapshots(directory: Path = SNAPSHOTS) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**defs.get(name, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    if "allOf" in schema and len(schema["allOf"]) == 1:  # pydantic wraps a described $ref this way
        schema = {**_resolve(schema["allOf"][0], defs), **{k: v for k, v in schema.items() if k != "allOf"}}
    return schema


def _kind(schema: dict[str, Any]) -> str:
    if "properties" in schema:
        return "object"
    if "const" in schema:
        return f"const:{json.dumps(schema['const'])}"
    return str(schema.get("type", "any"))


def _compare(old: dict[str, Any], new: dict[str, Any], od: dict[str, Any], nd: dict[str, Any], path: str, out: list[str]) -> None:
    o, n = _resolve(old, od), _resolve(new, nd)
    if n.get(PERSONAL_MARK):
        # The one widening allowed within a version: a field marked personal is sealed in transit
        # (shared/contracts/personal.py). Every consumer is one of the services, whose runtime opens
        # it (check() refuses it for an event read outside them); the plain shape must still hold.
        _compare(o["anyOf"][0] if o.get(PERSONAL_MARK) else old, n["anyOf"][0], od, nd, path, out)
        return
    if "anyOf" in o or "anyOf" in n or "oneOf" in o or "oneOf" in n:
        oa = [_resolve(a, od) for a in o.get("anyOf", o.get("oneOf", [o]))]
        na = [_resolve(a, nd) for a in n.get("anyOf", n.get("oneOf", [n]))]
        ok, nk = sorted(map(_kind, oa)), sorted(map(_kind, na))
        if ok != nk:
            out.append(f"{path}: type changed ({' | '.join(ok)} -> {' | '.join(nk)})")
            return
        by_kind = {_kind(a): a for a in na}
        for a in oa:
            _compare(a, by_kind[_kind(a)], od, nd, path, out)
        return
    for key in SHAPE_KEYS:
        if key == "type" and "properties" in o and "properties" in n:
            continue
        if o.get(key) != n.get(key):
            out.append(f"{path}: {key} changed ({json.dumps(o.get(key))} -> {json.dumps(n.get(key))})")
    if "items" in o or "items" in n:
        _compare(o.get("items", {}), n.get("items", {}), od, nd, f"{path}[]", out)
    if isinstance(o.get("additionalProperties"), dict) and isinstance(n.get("additionalProperties"), dict):
        _compare(o["additionalProperties"], n["additionalProperties"], od, nd, f"{path}{{}}", out)
    if "properties" in o or "properties" in n:
        op, np_ = o.get("properties", {}), n.get("properties", {})
        for name, sub in op.items():
            if name not in np_:
                out.append(f"{path}.{name}: field removed")
            else:
                _compare(sub, np_[name], od, nd, f"{path}.{name}", out)
        for name in sorted(set(n.get("required", [])) - set(o.get("required", []))):
            out.append(f"{path}.{name}: field {'made' if name in op else 'added as'} required")


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a consumer of ``old`` (or a replay of events stored in its shape) would trip over in ``new``."""
    out: list[str] = []
    _compare(old, new, old.get("$defs", {}), new.get("$defs", {}), "$", out)
    return out


def _sealed_for_outsiders(subject: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """A field newly sealed in an event that a client outside the services reads: they cannot open it."""
    spec = next((e for e in EVENTS if e.subject == subject), None)
    if spec is None or not spec.outside:
        return []
    before, after = old.get("properties", {}), new.get("properties", {})
    return [
        f"$.{name}: sealed, but read outside the services ({', '.join(spec.outside)}): a new version instead"
        for name, field in after.items()
        if field.get(PERSONAL_MARK) and not before.get(name, {}).get(PERSONAL_MARK)
    ]


def check(snapshots: dict[str, dict[str, Any]] | None = None) -> dict[str, list[str]]:
    """Breaking changes per published subject (a subject whose version disappeared is one too)."""
    snapshots = load_snapshots() if snapshots is None else snapshots
    current = published()
    problems: dict[str, list[str]] = {}
    # Retired on purpose, for carrying contact details: no longer published (docs/operations.md).
    retired = {m.subject() for m in RETIRED_EVENTS}
    for subject, old in snapshots.items():
        if subject not in current and subject in retired:
            continue
        if subject not in current:
            problems[subject] = ["published event version removed (keep it until no consumer or stored event needs it)"]
            continue
        found = breaking_changes(old, current[subject]) + _sealed_for_outsiders(subject, old, current[subject])
        if found:
            problems[subject] = found
    return problems


def write(directory: Path = SNAPSHOTS, force: bool = False) -> list[str]:
    problems = check(load_snapshots(directory)) if directory.exists() else {}
    if problems and not force:
        raise SystemExit("breaking changes, not written (publish a new version instead):\n" + json.dumps(problems, indent=2))
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for subject, schema in published().items():
        path = directory / f"{subject}.json"
        text = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(subject)
    return written


def main(argv: list[str]) -> None:
    cmd = argv[0] if argv else "check"
    if cmd == "write":
        for subject in write(force="--force" in argv):
            print(f"wrote docs/contracts/{subject}.json")
    elif cmd == "check":
        problems = check()
        for subject, found in problems.items():
            for p in found:
                print(f"{subject}: {p}")
        raise SystemExit(1 if problems else 0)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
