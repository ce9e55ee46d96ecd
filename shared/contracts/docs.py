"""Generate the event catalogue (Markdown, for the README), the AsyncAPI document and the error-code
reference from the code.

python -m shared.contracts.docs catalogue   # Markdown table
python -m shared.contracts.docs asyncapi    # AsyncAPI 3.0 JSON (docs/asyncapi.json)
python -m shared.contracts.docs errors      # docs/errors.md
python -m shared.contracts.docs write       # update README.md, docs/asyncapi.json and docs/errors.md

Which services consume an event, and which function answers a request (hence which error codes it
can return), are read from the four services' bootstraps (``infra.wiring``), not declared here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, create_model

from shared.errors import ERRORS, KINDS

from . import EVENTS, INTAKE_SUBJECT, REQUESTS, STREAMS, Contract, ReferralSubmission, RefusalDetail, Reply

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- catalogue:begin -->", "<!-- catalogue:end -->"
ENVELOPE = {"event_id", "occurred_at", "producer", "case_id", "causation_id"}
EMBEDDED_NATS = "127.0.0.1:4250"


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "–"


def _fields(model: Any) -> str:
    return _names([n for n in model.model_fields if n not in ENVELOPE])


def _required(model: Any) -> list[str]:
    return [n for n, f in model.model_fields.items() if f.is_required()]


def _optional(model: Any) -> list[str]:
    return [n for n, f in model.model_fields.items() if not f.is_required()]


def _consumers(subject: str, outside: tuple[str, ...]) -> tuple[str, ...]:
    from infra.wiring import consumers

    return consumers().get(subject, ()) + outside


def shown_subject(model: Any) -> str:
    """The subject as documented: a routed event's with its route, ``<municipality>.<team>``."""
    return f"{model.subject()}.<municipality>.<team>" if model.routed else str(model.subject())


ROUTE_PARAMETERS = {
    "municipality": {
        "description": "The case's municipality as a routing id: lower case, accents dropped, no dots "
        "(e.g. 'Testilä' -> testila; 'unrouted' when the case has none yet)."
    },
    "team": {"description": "The case's team id (e.g. testila-family-centre; 'unrouted' when none is assigned yet)."},
}


def _reply_name(model: Any) -> str:
    return f"{model.__name__}Reply"


def catalogue() -> str:
    lines = [
        "Every event carries the envelope `event_id` (also its `Nats-Msg-Id`), `occurred_at` (UTC), "
        "`producer`, `case_id`, `causation_id`. Subjects are `<event>.v<version>`. The services among the "
        "consumers are read from their real subscriptions (each service's `bootstrap()`).",
        "",
        "| subject | stream | producer | consumers | payload |",
        "| --- | --- | --- | --- | --- |",
        f"| `{INTAKE_SUBJECT}` | INTAKE | front door (header `Nats-Msg-Id` = submission id, required) | "
        f"{', '.join(_consumers(INTAKE_SUBJECT, ()))} | {_fields(ReferralSubmission)} |",
    ]
    for e in EVENTS:
        consumers = ", ".join(_consumers(e.filter_subject, e.outside)) or "–"
        lines.append(f"| `{shown_subject(e.model)}` | {e.model.stream} | {e.producer} | {consumers} | {_fields(e.model)} |")
    lines += [
        "",
        "Request/reply (core NATS; the reply is a `Reply`: `ok`, `id`, `errors[field, code, message{fi,sv,en}]`, "
        "`data`, where `data` is the type in the last column when `ok`, or a `RefusalDetail` on a refusal by "
        "identity or policy; the whole reply is `<Request>Reply` in `docs/asyncapi.json`). A command's `id` is what "
        "it created or changed (a consent's id, a meeting's, a plan's). "
        "Every error code a request can return, with its texts: [docs/errors.md](docs/errors.md).",
        "",
    ]
    lines += [
        "| subject | service | what | required fields | optional fields | reply `data` |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in REQUESTS:
        data = r.model.reply_data
        lines.append(
            f"| `{r.subject}` | {r.service} | {r.description} | {_names(_required(r.model))} | "
            f"{_names(_optional(r.model))} | {f'`{data.__name__}`' if data else 'none'} |"
        )
    lines += ["", "Streams:", "", "| stream | subjects | owner |", "| --- | --- | --- |"]
    for s in STREAMS.values():
        lines.append(f"| {s.name} | {', '.join(f'`{x}`' for x in s.subjects)} | {s.owner} |")
    return "\n".join(lines) + "\n"


# -- AsyncAPI -----------------------------------------------------------------------------------------

TRACEPARENT = {
    "type": "string",
    "description": "W3C trace context (optional): the services continue the caller's trace.",
}
INTAKE_HEADERS = {
    "type": "object",
    "required": ["Nats-Msg-Id"],
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "description": "Required: the front door's submission id (the payload's submission_id). JetStream "
            "drops a second publication with the same id within the duplicate window (120 s; its publish "
            "acknowledgement then says duplicate: true), so a retry never makes a second referral. A corrected "
            "resend of a submission the referral service rejected (referral.rejected.v1) keeps its submission_id "
            "and takes a new message id, e.g. <submission_id>:r2, or JetStream drops it as a retry.",
        },
        "traceparent": TRACEPARENT,
    },
}
EVENT_HEADERS = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {"type": "string", "description": "The event's event_id (duplicates are dropped)."},
        "Koolle-Event-Type": {"type": "string", "description": "The event type, e.g. referral.received."},
        "Koolle-Case-Id": {"type": "string", "description": "The case id (empty when none)."},
        "traceparent": TRACEPARENT,
    },
}
AUTHORIZATION = {
    "type": "string",
    "pattern": "^Bearer .+$",
    "description": "The caller's OpenID Connect access token (a JWT): `Bearer <token>`. Verified on every request "
    "(signature against the identity provider's JWKS, issuer, audience, expiry); missing or invalid: error code "
    "`unauthenticated`. Roles, purposes and who may do what: README, 'Calling the services'; docs/identity.md.",
}
REQUEST_HEADERS = {
    "type": "object",
    "required": ["Authorization"],
    "properties": {"Authorization": AUTHORIZATION, "traceparent": TRACEPARENT},
}
REPLY_HEADERS = {
    "type": "object",
    "description": "Set by the service's runtime (FastStream); a client needs none of them: the reply's body says everything.",
    "properties": {
        "content-type": {"type": "string", "description": "application/json."},
        "correlation_id": {"type": "string", "description": "The runtime's id of this request/reply exchange."},
    },
}

SERVERS = {
    "embedded": {
        "host": EMBEDDED_NATS,
        "protocol": "nats",
        "title": "Embedded NATS (make run)",
        "description": "The nats-server that `make run` starts. Each identity (frontdoor, staffapp, ops, one per "
        "service) has its own user and password, generated into the data dir; TLS is off unless configured.",
        "security": [{"$ref": "#/components/securitySchemes/natsUser"}],
    },
    "production": {
        "host": "{host}",
        "protocol": "nats",
        "title": "Production NATS cluster (placeholder)",
        "description": "Your county's NATS cluster. User and password per identity, as above; TLS optional "
        "(tls:// URLs, a CA, and a client certificate for mutual TLS: docs/operations.md, 'TLS to NATS').",
        "variables": {"host": {"default": "nats.example.org:4222", "description": "host:port of a cluster node."}},
        "security": [{"$ref": "#/components/securitySchemes/natsUser"}],
    },
}
SECURITY_SCHEMES = {
    "natsUser": {
        "type": "userPassword",
        "description": "One NATS user and password per identity (frontdoor, staffapp, ops, and each service), each "
        "allowed only the subjects its role needs and its own inbox prefix _INBOX_<identity> (infra/auth.py). "
        "TLS is optional and, when configured, mandatory for that client.",
    },
}


def reply_model(request: type[Contract]) -> type[Reply]:
    """The ``Reply`` of one request, with ``data`` typed by its ``reply_data``."""
    data = request.reply_data
    refused = (
        "On a refusal by identity or policy (unauthenticated, forbidden, purpose_required, version_retired) a "
        "RefusalDetail: reason, or successor."
    )
    if data is None:
        field: Any = (
            RefusalDetail | None,
            Field(default=None, description=f"Empty when carried out: this request's reply carries no data. {refused}"),
        )
    else:
        field = (
            data | RefusalDetail | None,
            Field(
                default=None,
                description=f"The result ({data.__name__}). {refused} On other refusals empty, or the result where the request says so.",
            ),
        )
    return create_model(_reply_name(request), __base__=Reply, __doc__=f"Reply to {request.__name__}.", data=field)


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def schema_of(name: str, model: Any) -> None:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for k, v in [*schema.pop("$defs", {}).items(), (name, schema)]:
            assert schemas.get(k, v) == v, f"two different schemas are named {k}"
            schemas[k] = v

    def message(name: str, model: Any, summary: str, headers: str) -> dict[str, Any]:
        schema_of(name, model)
        messages[name] = {
            "name": name,
            "title": name,
            "summary": summary,
            "headers": {"$ref": f"#/components/schemas/{headers}"},
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        return {"$ref": f"#/components/messages/{name}"}

    def add(name: str, subject: str, model: Any, action: str, summary: str, headers: str) -> str:
        key = subject.replace("{", "").replace("}", "").replace(".", "_")  # a routed address's parameters
        channels[key] = {"address": subject, "messages": {name: message(name, model, summary, headers)}}
        operations[f"{action}_{key}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}],
        }
        return f"{action}_{key}"

    add("ReferralSubmission", INTAKE_SUBJECT, ReferralSubmission, "receive", "Front door submits a referral.", "IntakeHeaders")
    for e in EVENTS:
        address = f"{e.subject}.{{municipality}}.{{team}}" if e.model.routed else e.subject
        add(e.model.__name__, address, e.model, "send", (e.model.__doc__ or "").strip().splitlines()[0], "EventHeaders")
        if e.model.routed:
            channels[address.replace("{", "").replace("}", "").replace(".", "_")]["parameters"] = ROUTE_PARAMETERS
    for r in REQUESTS:
        op = add(r.model.__name__, r.subject, r.model, "receive", r.description, "RequestHeaders")
        name = _reply_name(r.model)
        key = f"{r.subject.replace('.', '_')}_reply"
        channels[key] = {
            "address": None,
            "description": "The requester's inbox: the NATS reply subject of the request.",
            "messages": {name: message(name, reply_model(r.model), f"Reply to {r.subject}.", "ReplyHeaders")},
        }
        operations[op]["reply"] = {
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}],
        }
    schema_of("Reply", Reply)
    schemas |= {
        "IntakeHeaders": INTAKE_HEADERS,
        "EventHeaders": EVENT_HEADERS,
        "RequestHeaders": REQUEST_HEADERS,
        "ReplyHeaders": REPLY_HEADERS,
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Koolle",
            "version": "1.0.0",
            "description": "Events and commands of the Koolle services. Error codes: docs/errors.md. Staff-facing "
            "events are published on routed subjects <event>.v<N>.<municipality>.<team> (channel parameters); a staff "
            "app may read those of its configured routes only (infra/staff_apps.json), live or through its own durable "
            "consumers named <identity>-<filter subject with '-' for '.' and 'all' for '*'>, created with "
            "$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter> and read with $JS.API.CONSUMER.MSG.NEXT.<stream>.<name> "
            "and $JS.ACK.<stream>.<name>.> (README, 'Reading events'). Events carry contact ids and roles, never "
            "e-mail addresses or phone numbers: those travel only on directory.> (the DIRECTORY stream), which the "
            "notifications service alone may read.",
        },
        "defaultContentType": "application/json",
        "servers": SERVERS,
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {
            "messages": dict(sorted(messages.items())),
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


# -- error codes --------------------------------------------------------------------------------------


def errors_md() -> str:
    from infra.error_codes import codes_of
    from infra.wiring import request_handlers

    handlers = request_handlers()
    every = ("validation", "runtime", "identity")
    lines = [
        "# Error codes",
        "",
        "<!-- generated by `python -m shared.contracts.docs write` from shared/errors.py and the services' code; do not edit -->",
        "",
        "A refused command or query answers `Reply` with `ok: false` and `errors`: a list of "
        "`{field, code, message: {fi, sv, en}}`. `field` is a dotted path into the request (`$` for the whole "
        "request, `Authorization` for the token's header); `code` is stable and machine-readable; `message` is for people, in Finnish, Swedish and "
        "English, and never echoes a value you sent. Codes are the contract: a refusal may carry a more specific "
        "text than the one below for the same code. `cmd.meetings.propose.v2` may answer `ok: false` with "
        "`data` (the proposal id and the earliest time after the deadline). `cmd.meetings.respond.v2` answers a "
        "decline with `ok: true`; when no substitute or new time is found, `data.no_slot` holds one of the "
        "proposal codes its row lists (`no_feasible_slot`, `no_room`, `no_slot_before_deadline`, `unknown_role`).",
        "",
        "The codes of the " + ", ".join(f"**{k}**" for k in every) + " kinds can come from any request; the "
        "table by request lists the codes of the service's own rules. The identity codes answer who is asking "
        "and what they may do: a refusal's `data.reason` says why (e.g. `no_relation_to_case`, `not_on_team`, "
        "`purpose_missing`), `version_retired` names the subject to use in `data.successor`. Roles, purposes and "
        "the policy: README, 'Calling the services'.",
        "",
    ]
    for kind, what in KINDS.items():
        lines += [f"## {kind}", "", what, "", "| code | fi | sv | en |", "| --- | --- | --- | --- |"]
        for e in ERRORS.values():
            if e.kind == kind:
                lines.append(f"| `{e.code}` | {e.fi} | {e.sv} | {e.en} |")
        lines.append("")
    from typing import get_args

    from shared.identity import Reason
    from shared.policy import REASONS

    lines += [
        "## Refusal reasons (`data.reason`)",
        "",
        "`unauthenticated`: " + ", ".join(f"`{r}`" for r in get_args(Reason)) + " (their meanings: docs/identity.md, "
        "'When a token is refused'). `forbidden` and `purpose_required` (the policy, shared/policy.py), every reason:",
        "",
        "| reason | meaning |",
        "| --- | --- |",
        *(f"| `{reason}` | {text} |" for reason, text in REASONS.items()),
        "",
        "## By request",
        "",
        "Besides the validation, runtime and identity codes above (read from the handler and everything it calls):",
        "",
        "| subject | service | codes |",
        "| --- | --- | --- |",
    ]
    for r in REQUESTS:
        h = handlers[r.subject]
        lines.append(f"| `{r.subject}` | {h.service} | {_names(codes_of(h.handler))} |")
    return "\n".join(lines) + "\n"


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
    elif what == "errors":
        print(errors_md(), end="")
    elif what == "write":
        readme = ROOT / "README.md"
        readme.write_text(readme_with_catalogue(readme.read_text()))
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "asyncapi.json").write_text(json.dumps(asyncapi(), indent=2, ensure_ascii=False) + "\n")
        (ROOT / "docs" / "errors.md").write_text(errors_md())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
