"""Generate the event catalogue (Markdown, for the README) and the AsyncAPI document from the code.

python -m shared.contracts.docs catalogue   # Markdown table
python -m shared.contracts.docs asyncapi    # AsyncAPI 3.0 JSON (docs/asyncapi.json)
python -m shared.contracts.docs write       # update README.md and docs/asyncapi.json in place
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import EVENTS, INTAKE_SUBJECT, REQUESTS, STREAMS, ReferralSubmission, Reply

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- catalogue:begin -->", "<!-- catalogue:end -->"
ENVELOPE = {"event_id", "occurred_at", "producer", "case_id", "causation_id"}


def _fields(model: Any) -> str:
    names = [n for n in model.model_fields if n not in ENVELOPE]
    return ", ".join(f"`{n}`" for n in names)


def catalogue() -> str:
    lines = [
        "Every event carries the envelope `event_id` (also its `Nats-Msg-Id`), `occurred_at` (UTC), "
        "`producer`, `case_id`, `causation_id`. Subjects are `<event>.v<version>`.",
        "",
        "| subject | stream | producer | consumers | payload |",
        "| --- | --- | --- | --- | --- |",
        f"| `{INTAKE_SUBJECT}` | INTAKE | front door (`Nats-Msg-Id` = submission id) | referral | {_fields(ReferralSubmission)} |",
    ]
    for e in EVENTS:
        lines.append(f"| `{e.subject}` | {e.model.stream} | {e.producer} | {', '.join(e.consumers)} | {_fields(e.model)} |")
    lines += [
        "",
        "Request/reply (core NATS; the reply is a `Reply`: `ok`, `id`, `errors[field, code, message{fi,sv,en}]`, `data`):",
        "",
    ]
    lines += ["| subject | service | what | request fields |", "| --- | --- | --- | --- |"]
    for r in REQUESTS:
        lines.append(f"| `{r.subject}` | {r.service} | {r.description} | {_fields(r.model)} |")
    lines += ["", "Streams:", "", "| stream | subjects | owner |", "| --- | --- | --- |"]
    for s in STREAMS.values():
        lines.append(f"| {s.name} | {', '.join(f'`{x}`' for x in s.subjects)} | {s.owner} |")
    return "\n".join(lines) + "\n"


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def add(name: str, subject: str, model: Any, action: str, summary: str) -> None:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for k, v in schema.pop("$defs", {}).items():
            schemas[k] = v
        schemas[name] = schema
        messages[name] = {"name": name, "title": name, "summary": summary, "payload": {"$ref": f"#/components/schemas/{name}"}}
        key = subject.replace(".", "_")
        channels[key] = {"address": subject, "messages": {name: {"$ref": f"#/components/messages/{name}"}}}
        operations[f"{action}_{key}"] = {"action": action, "channel": {"$ref": f"#/channels/{key}"}, "summary": summary}

    add("ReferralSubmission", INTAKE_SUBJECT, ReferralSubmission, "receive", "Front door submits a referral.")
    for e in EVENTS:
        add(e.model.__name__, e.subject, e.model, "send", (e.model.__doc__ or "").strip().splitlines()[0])
    for r in REQUESTS:
        add(r.model.__name__, r.subject, r.model, "receive", r.description)
    schemas["Reply"] = Reply.model_json_schema(ref_template="#/components/schemas/{model}")
    for k, v in schemas["Reply"].pop("$defs", {}).items():
        schemas[k] = v
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Koolle", "version": "1.0.0", "description": "Events and commands of the Koolle services."},
        "defaultContentType": "application/json",
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": dict(sorted(messages.items())), "schemas": dict(sorted(schemas.items()))},
    }


def readme_with_catalogue(readme: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{catalogue()}{END}{tail}"


def main(argv: list[str]) -> None:
    what = argv[1] if len(argv) > 1 else "catalogue"
    if what == "catalogue":
        print(catalogue(), end="")
    elif what == "asyncapi":
        print(json.dumps(asyncapi(), indent=2, ensure_ascii=False))
    elif what == "write":
        readme = ROOT / "README.md"
        readme.write_text(readme_with_catalogue(readme.read_text()))
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "asyncapi.json").write_text(json.dumps(asyncapi(), indent=2, ensure_ascii=False) + "\n")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
