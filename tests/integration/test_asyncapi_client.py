"""A client generated from docs/asyncapi.json has typed replies: the AsyncAPI parser validates the
document, and Modelina (an AsyncAPI code generator) generates TypeScript models from it in which
every request's reply is its own type whose ``data`` is the request's declared reply model.

Needs node and npm (the pinned tools of tests/asyncapi/ are installed once into a cache directory);
skipped only when node or npm is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.contracts import INTAKE_SUBJECT, REQUESTS

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tests" / "asyncapi"


def _tools() -> Path:
    """The pinned node tools, installed once per lock file version (npm ci, no install scripts)."""
    lock = (TOOLS / "package-lock.json").read_bytes()
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "koolle"
        / f"asyncapi-{hashlib.sha256(lock).hexdigest()[:12]}"
    )
    if not (cache / "node_modules" / "@asyncapi" / "modelina").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(TOOLS / name, cache / name)
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=cache,
            check=True,
            timeout=600,
        )
    shutil.copy(TOOLS / "check.mjs", cache / "check.mjs")
    return cache


@pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="node and npm are needed")
def test_a_client_generated_from_the_asyncapi_document_has_typed_replies() -> None:
    tools = _tools()
    out = subprocess.run(
        ["node", str(tools / "check.mjs"), str(ROOT / "docs" / "asyncapi.json")],
        cwd=tools,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(out.stdout)
    assert result["valid"], result["errors"]
    assert {s["id"]: s["protocol"] for s in result["servers"]} == {"embedded": "nats", "production": "nats"}
    assert result["intakeHeaders"] == ["Nats-Msg-Id"], f"{INTAKE_SUBJECT} requires its Nats-Msg-Id header"

    types = result["types"]
    assert {"reason", "successor"} <= set(types["RefusalDetail"])
    for r in REQUESTS:
        op = f"receive_{r.subject.replace('.', '_')}"
        reply = f"{r.model.__name__}Reply"
        assert result["replies"][op] == {"request": [r.model.__name__], "reply": [reply]}, r.subject
        assert {"ok", "id", "errors", "data"} <= set(types[reply]), reply
        # A refusal by identity or policy carries a RefusalDetail in data, whatever was asked.
        if r.model.reply_data is None:
            assert types[reply]["data"] == ["RefusalDetail"], (reply, types[reply]["data"])
        else:
            data = r.model.reply_data.__name__
            assert types[reply]["data"] == [data, "RefusalDetail"], (reply, types[reply]["data"])
            generated = set(types[data])  # Modelina prefixes names reserved in TypeScript classes ("reservedStatus")
            for field in r.model.reply_data.model_fields:
                assert {_camel(field), "reserved" + _camel(field)[0].upper() + _camel(field)[1:]} & generated, (data, field)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
