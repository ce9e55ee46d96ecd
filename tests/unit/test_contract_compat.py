"""Published event versions only grow: a breaking change against the committed snapshots
(docs/contracts/<subject>.json) fails here. Refresh the snapshots after an additive change with
``python -m shared.contracts.compat write``; a breaking change needs a new version instead."""

from __future__ import annotations

import json
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from shared.contracts import EVENTS, INTAKE_SUBJECT
from shared.contracts.compat import breaking_changes, check, load_snapshots, published


def test_no_breaking_change_to_a_published_event_version() -> None:
    problems = check()
    assert problems == {}, "breaking change to a published event version (publish a new version instead):\n" + json.dumps(
        problems, indent=2
    )


def test_every_published_subject_has_an_up_to_date_snapshot() -> None:
    snapshots = load_snapshots()
    current = published()
    assert set(current) == {INTAKE_SUBJECT, *(e.subject for e in EVENTS)}
    missing = sorted(set(current) - set(snapshots))
    stale = sorted(s for s in current if s in snapshots and snapshots[s] != json.loads(json.dumps(current[s])))
    assert not missing and not stale, f"run `python -m shared.contracts.compat write` (missing {missing}, stale {stale})"


class Address(BaseModel):
    street: str
    zip_code: str = Field(max_length=5)


class V1(BaseModel):
    case_id: str
    count: int
    kind: Literal["a", "b"]
    note: str | None = None
    born: date
    address: Address
    tags: list[str] = []


def schema(model: type[BaseModel]) -> dict:
    return model.model_json_schema()


def test_rule_allows_a_new_optional_field_and_new_descriptions() -> None:
    class V2(BaseModel):
        case_id: str = Field(description="now documented")
        count: int
        kind: Literal["a", "b"]
        note: str | None = None
        born: date
        address: Address
        tags: list[str] = []
        extra: int | None = None

    assert breaking_changes(schema(V1), schema(V2)) == []
    assert breaking_changes(schema(V1), schema(V1)) == []


def test_rule_refuses_removed_changed_and_newly_required_fields() -> None:
    class Address2(BaseModel):
        street: str
        zip_code: str = Field(max_length=6)

    class V2(BaseModel):
        case_id: int  # type changed
        kind: Literal["a", "b", "c"]  # a value old consumers reject
        note: str  # now required
        born: str  # format date -> plain string
        address: Address2  # nested constraint changed
        tags: list[int] = []  # item type changed
        region: str  # new and required
        # count removed

    found = "\n".join(breaking_changes(schema(V1), schema(V2)))
    for expected in (
        "$.count: field removed",
        "$.case_id: type changed",
        "$.kind: enum changed",
        "$.note: type changed",
        "$.note: field made required",
        "$.born: format changed",
        "$.address.zip_code: maxLength changed",
        "$.tags[]: type changed",
        "$.region: field added as required",
    ):
        assert expected in found, (expected, found)


def test_a_removed_event_version_is_breaking() -> None:
    snapshots = load_snapshots()
    snapshots["referral.vanished.v1"] = {"type": "object", "properties": {}}
    assert check(snapshots)["referral.vanished.v1"][0].startswith("published event version removed")
