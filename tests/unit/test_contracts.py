import json
from datetime import UTC
from pathlib import Path

from shared.contracts import EVENTS, ReferralReceived, parse_event, stream_for_subject
from shared.contracts.docs import asyncapi, readme_with_catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_readme_catalogue_and_asyncapi_match_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_catalogue(readme), "run: python -m shared.contracts.docs write"
    committed = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(asyncapi())), "run: python -m shared.contracts.docs write"


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
