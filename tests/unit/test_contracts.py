import json
from datetime import UTC
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from infra.error_codes import codes_in_source, codes_of
from infra.wiring import SERVICES, built, request_handlers
from shared.contracts import EVENTS, REQUESTS, Contract, ReferralReceived, parse_event, stream_for_subject
from shared.contracts.base import field_errors, field_or_none
from shared.contracts.docs import BEGIN, END, asyncapi, errors_md, readme_with_catalogue
from shared.errors import ERRORS, KINDS, DomainError

ROOT = Path(__file__).resolve().parents[2]


def test_readme_catalogue_and_asyncapi_match_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_catalogue(readme), "run: python -m shared.contracts.docs write"
    committed = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(asyncapi())), "run: python -m shared.contracts.docs write"
    assert (ROOT / "docs" / "errors.md").read_text() == errors_md(), "run: python -m shared.contracts.docs write"


def test_every_request_declares_the_model_of_its_reply_data() -> None:
    for r in REQUESTS:
        declared = getattr(r.model, "reply_data", "undeclared")
        assert declared is None or (isinstance(declared, type) and issubclass(declared, Contract)), r.subject


def test_every_request_s_documented_reply_types_the_data_of_a_refusal_by_identity_or_policy() -> None:
    from shared.contracts.docs import reply_model
    from shared.requests import refusal

    refusals = [
        refusal("unauthenticated", "Authorization", {"reason": "expired"}),
        refusal("forbidden", "$", {"reason": "no_relation_to_case"}),
        refusal("purpose_required", "purpose", {"reason": "purpose_missing"}),
        refusal("version_retired", "$", {"successor": "query.referral.case.v2"}),
    ]
    for r in REQUESTS:
        documented = reply_model(r.model)  # what docs/asyncapi.json gives a generated client
        for reply in refusals:
            parsed = documented.model_validate_json(reply.model_dump_json())
            assert parsed.data is not None and parsed.data.model_dump(exclude_none=True) == reply.data, (r.subject, reply.data)


def test_every_request_in_the_catalogue_is_answered_by_a_service_and_every_answered_one_is_in_it() -> None:
    answered = {k: v for k, v in request_handlers().items() if not k.startswith("ops.")}  # operators only
    assert sorted(answered) == sorted(r.subject for r in REQUESTS)
    for r in REQUESTS:
        assert answered[r.subject].model is r.model and answered[r.subject].service == r.service, r.subject


def test_the_catalogue_names_as_consumers_exactly_the_services_that_subscribe() -> None:
    """The README's consumer column against the services' real subscriptions (their bootstraps)."""
    readme = (ROOT / "README.md").read_text()
    column = {}
    for line in readme.split(BEGIN, 1)[1].split(END, 1)[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):  # the event table: subject | stream | producer | consumers | payload
            column[cells[0].strip("`")] = {c.strip() for c in cells[3].split(",")} & set(SERVICES)
    subscribed: dict[str, set[str]] = {}
    for name, svc in built().items():
        for sub in svc.subscriptions:
            # A routed event's consumers take all its routes; the catalogue shows the route's tokens.
            shown = sub.subject.removesuffix(".>") + ".<municipality>.<team>" if sub.subject.endswith(".>") else sub.subject
            subscribed.setdefault(shown, set()).add(name)
    assert set(subscribed) <= set(column), "a service consumes a subject the catalogue does not list"
    assert {k: v for k, v in column.items() if v} == subscribed
    for e in EVENTS:
        assert not set(e.outside) & set(SERVICES), f"{e.subject}: services are read from their bootstraps, not declared"


def test_every_error_code_raised_in_the_code_is_registered_with_fi_sv_en_texts() -> None:
    unregistered = {code: where for code, where in codes_in_source().items() if code not in ERRORS}
    assert not unregistered, f"register these in shared/errors.py: {unregistered}"
    for e in ERRORS.values():
        assert e.fi and e.sv and e.en and e.kind in KINDS, e.code
    for reserved in ("unauthenticated", "forbidden", "purpose_required", "internal_error", "missing", "extra_forbidden"):
        assert reserved in ERRORS


def test_every_code_a_request_can_return_is_in_errors_md_with_its_texts() -> None:
    doc = (ROOT / "docs" / "errors.md").read_text()
    for code, e in ERRORS.items():
        assert f"| `{code}` | {e.fi} | {e.sv} | {e.en} |" in doc
    handlers = request_handlers()
    for r in REQUESTS:
        codes = codes_of(handlers[r.subject].handler)
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{r.subject}` |"))
        assert all(f"`{c}`" in row for c in codes), r.subject


def test_a_refusal_takes_its_texts_from_the_registry_unless_it_gives_more_specific_ones() -> None:
    assert DomainError("not_linked", "referral_id").message == ERRORS["not_linked"].message()
    specific = DomainError("in_past", "starts_at", en="The meeting must start in the future.")
    # The specific text is translated by the errors catalogue, like the registry's texts.
    assert specific.message == {
        "fi": "Tapaamisen on alettava tulevaisuudessa.",
        "sv": "Mötet måste börja i framtiden.",
        "en": "The meeting must start in the future.",
    }


def test_every_event_subject_lives_in_its_declared_stream() -> None:
    for e in EVENTS:
        assert stream_for_subject(e.subject) == e.model.stream
        assert e.subject == e.subject.lower()


def test_consumers_are_tolerant_producers_are_strict() -> None:
    import uuid
    from datetime import datetime

    import pytest
    from pydantic import ValidationError

    ev = ReferralReceived(
        producer="t",
        case_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        submission_id="s",
        channel="phone",
        municipality="M",
        received_at=datetime.now(UTC),
        language="fi",
        interpreter_needed=False,
        urgent=False,
        statutory=False,
        child_count=1,
        consent_to_convene=False,
    )
    data = json.loads(ev.to_json()) | {"added_later": 1}
    assert parse_event(ReferralReceived, json.dumps(data)).event_id == ev.event_id
    with pytest.raises(ValidationError) as err:
        ReferralReceived.model_validate(data)
    assert "added_later" in str(err.value) and "1" not in str(err.value).split("added_later")[1][:20]


def test_event_ids_are_time_ordered_uuids() -> None:
    """Version 7: valid RFC 9562 UUIDs that sort by creation time (index pages stay at the end)."""
    import time as _time
    from uuid import UUID

    from shared.contracts.base import time_ordered_id

    first = [time_ordered_id() for _ in range(1000)]
    _time.sleep(0.002)
    later = time_ordered_id()
    assert len(set(first)) == 1000
    assert all(u.version == 7 and u.variant == "specified in RFC 4122" for u in first)
    assert later > max(first)
    assert UUID(str(later)) == later
    assert abs((later.int >> 80) - _time.time_ns() // 1_000_000) < 1000  # milliseconds since 1970


def test_event_ids_share_no_random_bits_across_threads_or_a_fork() -> None:
    """The random bits come from a pool per thread that a forked child empties: two threads, or a
    parent and its child, taking ids at the same moment never get the same bits."""
    import os
    import threading

    from shared.contracts.base import time_ordered_id

    time_ordered_id()  # the pool is filled before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, b"".join(time_ordered_id().bytes for _ in range(50)))
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 16 * 50)
    os.close(read)
    os.close(write)
    parent = b"".join(time_ordered_id().bytes for _ in range(50))
    rand = lambda b: {b[i + 6 : i + 16] for i in range(0, len(b), 16)}  # noqa: E731 - the random part
    assert not rand(child) & rand(parent)

    other: list[bytes] = []
    t = threading.Thread(target=lambda: other.extend(time_ordered_id().bytes for _ in range(500)))
    t.start()
    mine = [time_ordered_id().bytes for _ in range(500)]
    t.join()
    assert not {b[6:] for b in other} & {b[6:] for b in mine}


def test_a_number_no_integer_field_can_hold_is_refused_with_documented_codes() -> None:
    # Found by the fuzz test: 9.2e18 in a room's capacity gave pydantic's int_parsing_size, which
    # had no entry (so no documented text). Every integer field of every request, with numbers
    # beyond 64 bits and what is no integer at all.
    checked = 0
    for r in REQUESTS:
        for name, field in r.model.model_fields.items():
            if int not in (field.annotation, *get_args(field.annotation)):
                continue
            for value in ("9.223372036854776e+18", "1" + "0" * 30, "-1" + "0" * 30, "1e999", "1.5", '"x"', "true"):
                try:
                    r.model.model_validate_json(f'{{"{name}": {value}}}')
                except ValidationError as exc:
                    codes = {e.code for e in field_errors(exc) if e.field == name}
                    assert codes <= set(ERRORS), (r.subject, name, value, codes)
                    checked += bool(codes)
    assert checked > 20


def test_a_field_an_event_does_not_have_reads_as_none_and_its_own_fields_and_properties_as_they_are():
    from dataclasses import dataclass

    from tests.support.data import referral_received

    ev = referral_received()
    assert field_or_none(ev, "case_id") == ev.case_id
    assert field_or_none(ev, "command_id") is None  # pydantic would raise and format an AttributeError
    assert field_or_none(ev, "municipality") == ev.municipality

    @dataclass(frozen=True)
    class Cause:
        data: bytes

        @property
        def case_id(self) -> str:
            return "from-a-property"

    assert field_or_none(Cause(b""), "case_id") == "from-a-property"
    assert field_or_none(Cause(b""), "event_id") is None
    assert field_or_none(None, "case_id") is None
