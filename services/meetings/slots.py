"""The roster and slot finding (yhteisen ajan löytäminen). Plain Python, no I/O.

Finding a common time for everyone is the known pain of convening. :func:`find_slot` takes the roles
the situation needs, the roster, what is already booked, the family's stated availability and the
case's deadline, and answers with people for every role and **the earliest** start at which all of
them, the family and a big-enough room are free:

- times are steps of 15 minutes in Europe/Helsinki local time, on Finnish working days only
  (weekends and public holidays excluded, :mod:`shared.calendar`), inside every professional's
  working hours; local wall-clock times are turned into UTC per day, so DST changes are handled;
- a meeting may not end after the last day of the case's deadline (when there is one);
- for each role the people of the case's municipality come first (others only when the municipality
  has nobody in that role), then those who speak the family's language; at one start time the most
  preferred free person is chosen, and the earliest time wins over preference;
- the smallest free room of the municipality that seats everyone is taken.

No feasible slot is an answer too: :class:`NoSlot` with a machine-readable code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.calendar import is_working_day
from shared.clock import HELSINKI
from shared.errors import message

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = tuple((d, "08:00", "16:00") for d in WEEKDAYS[:5])
STEP = timedelta(minutes=15)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Professional:
    professional_id: str
    municipality: str
    roles: tuple[str, ...]
    languages: tuple[str, ...]
    unit: str
    team: str | None = None
    working_hours: tuple[tuple[str, str, str], ...] = DEFAULT_HOURS  # (weekday, "HH:MM", "HH:MM") local
    contact: dict[str, Any] | None = None
    active: bool = True
    name: str | None = None  # as families see it in messages
    title: dict[str, str] = field(default_factory=dict)  # job title by language

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Professional:
        hours = d.get("working_hours") or []
        return cls(
            professional_id=d["professional_id"],
            municipality=d["municipality"],
            roles=tuple(d["roles"]),
            languages=tuple(d["languages"]),
            unit=d["unit"],
            team=d.get("team"),
            working_hours=tuple((h["day"], h["start"], h["end"]) for h in hours) or DEFAULT_HOURS,
            contact=d.get("contact"),
            active=d.get("active", True),
            name=d.get("name"),
            title=dict(d.get("title") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "professional_id": self.professional_id,
            "municipality": self.municipality,
            "roles": list(self.roles),
            "languages": list(self.languages),
            "unit": self.unit,
            "team": self.team,
            "working_hours": [{"day": d, "start": s, "end": e} for d, s, e in self.working_hours],
            "contact": self.contact,
            "active": self.active,
            "name": self.name,
            "title": self.title,
        }

    def works(self, starts_at: datetime, ends_at: datetime) -> bool:
        """Whether [starts_at, ends_at) lies inside this person's working hours on a working day."""
        s, e = starts_at.astimezone(HELSINKI), ends_at.astimezone(HELSINKI)
        if s.date() != e.date() and not (e.time() == time(0) and e.date() == s.date() + timedelta(days=1)):
            return False
        if not is_working_day(s.date()):
            return False
        day = WEEKDAYS[s.weekday()]
        for d, ws, we in self.working_hours:
            if d != day:
                continue
            w_start = _at(s.date(), ws)
            w_end = _at(s.date(), we)
            if w_start <= starts_at and ends_at <= w_end:
                return True
        return False


@dataclass(frozen=True)
class Room:
    room_id: str
    municipality: str
    capacity: int
    location: str
    active: bool = True
    address: str | None = None
    names: dict[str, str] = field(default_factory=dict)  # the place's name in other languages

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Room:
        return cls(
            d["room_id"],
            d["municipality"],
            int(d["capacity"]),
            d["location"],
            d.get("active", True),
            d.get("address"),
            dict(d.get("names") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "municipality": self.municipality,
            "capacity": self.capacity,
            "location": self.location,
            "active": self.active,
            "address": self.address,
            "names": self.names,
        }


@dataclass(frozen=True)
class SlotRequest:
    municipality: str
    language: str
    roles: Sequence[str]
    not_before: datetime
    duration: timedelta = timedelta(hours=1)
    fixed_ids: Sequence[str] = ()
    family_windows: Sequence[Interval] = ()  # empty: the family can come at any working time
    deadline: date | None = None  # last Helsinki day the meeting may take place
    party_size: int = 2  # everyone who needs a seat (family, professionals, referrer, interpreter)
    horizon_days: int = 60


@dataclass
class Proposal:
    starts_at: datetime
    ends_at: datetime
    room_id: str
    assignments: list[tuple[str, str]]  # (role, professional_id), fixed people with their first role
    interpreter_needed: bool
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # role -> other free candidates then

    def professional_ids(self) -> list[str]:
        return [p for _, p in self.assignments]

    def to_dict(self) -> dict[str, Any]:
        return {
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "room": self.room_id,
            "assignments": [{"role": r, "professional_id": p} for r, p in self.assignments],
            "interpreter_needed": self.interpreter_needed,
            "alternatives": self.alternatives,
        }


class NoSlot(Exception):
    """No feasible slot; ``code`` and ``field`` are machine-readable, never personal data."""

    def __init__(self, code: str, field: str = "roles", earliest_after_deadline: Proposal | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        self.earliest_after_deadline = earliest_after_deadline

    def messages(self) -> dict[str, str]:
        return message(self.code)


def _at(d: date, hhmm: str) -> datetime:
    """A Helsinki wall-clock time on a day, as an aware UTC datetime (DST-correct)."""
    h, m = (int(x) for x in hhmm.split(":"))
    if h == 24:
        return datetime.combine(d + timedelta(days=1), time(0), tzinfo=HELSINKI).astimezone(UTC)
    return datetime.combine(d, time(h, m), tzinfo=HELSINKI).astimezone(UTC)


def overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def free(busy: Iterable[Interval], starts_at: datetime, ends_at: datetime) -> bool:
    return not any(overlaps(b, (starts_at, ends_at)) for b in busy)


def rank(
    role: str, roster: Iterable[Professional], municipality: str, language: str, exclude: Iterable[str] = ()
) -> list[Professional]:
    """Candidates for a role: the municipality's own people (others only if it has none), the
    family's language first, then by id (deterministic)."""
    skip = set(exclude)
    having = [p for p in roster if p.active and role in p.roles and p.professional_id not in skip]
    own = [p for p in having if p.municipality == municipality]
    pool = own or having
    return sorted(pool, key=lambda p: (language not in p.languages, p.professional_id))


def _assign(
    roles: Sequence[str], candidates: dict[str, list[Professional]], ok: dict[str, bool], used: set[str]
) -> list[Professional] | None:
    """Pick one free person per role, distinct people, most preferred first (small backtracking)."""
    if not roles:
        return []
    role, rest = roles[0], roles[1:]
    for p in candidates[role]:
        if p.professional_id in used or not ok[p.professional_id]:
            continue
        tail = _assign(rest, candidates, ok, used | {p.professional_id})
        if tail is not None:
            return [p, *tail]
    return None


def _ceil_step(dt: datetime) -> datetime:
    dt = dt.astimezone(UTC)
    base = dt.replace(minute=0, second=0, microsecond=0)
    while base < dt:
        base += STEP
    return base


def find_slot(
    req: SlotRequest,
    roster: Sequence[Professional],
    rooms: Sequence[Room],
    busy: dict[str, list[Interval]],
) -> Proposal:
    """The earliest feasible slot (see the module doc). ``busy`` maps 'person:<id>' / 'room:<id>' to
    booked intervals. Raises :class:`NoSlot`."""
    by_id = {p.professional_id: p for p in roster if p.active}
    fixed = []
    for pid in req.fixed_ids:
        if pid not in by_id:
            raise NoSlot("unknown_participant", "participant_ids")
        if by_id[pid] not in fixed:
            fixed.append(by_id[pid])
    fixed_ids = {p.professional_id for p in fixed}
    # A role already covered by a chosen person needs nobody else.
    roles = [r for r in req.roles if not any(r in p.roles for p in fixed)]
    candidates = {r: rank(r, roster, req.municipality, req.language, exclude=fixed_ids) for r in roles}
    for c in candidates.values():
        if not c:
            raise NoSlot("unknown_role", "roles")
    size = req.party_size + len(fixed) + len(roles)
    room_list = sorted(
        (r for r in rooms if r.active and r.municipality == req.municipality and r.capacity >= size),
        key=lambda r: (r.capacity, r.room_id),
    )
    if not room_list:
        raise NoSlot("no_room", "room")

    people = {p.professional_id: p for p in fixed} | {p.professional_id: p for c in candidates.values() for p in c}
    first_day = req.not_before.astimezone(HELSINKI).date()
    last_day = first_day + timedelta(days=req.horizon_days)
    found = _search(req, first_day, last_day, fixed, roles, candidates, people, room_list, busy)
    if found is not None and (req.deadline is None or found.starts_at.astimezone(HELSINKI).date() <= req.deadline):
        return found
    if req.deadline is not None:
        raise NoSlot("no_slot_before_deadline", "deadline", earliest_after_deadline=found)
    raise NoSlot("no_feasible_slot")


def _search(
    req: SlotRequest,
    first_day: date,
    last_day: date,
    fixed: list[Professional],
    roles: list[str],
    candidates: dict[str, list[Professional]],
    people: dict[str, Professional],
    rooms: list[Room],
    busy: dict[str, list[Interval]],
) -> Proposal | None:
    earliest = _ceil_step(req.not_before)
    day = first_day
    while day <= last_day:
        wd = WEEKDAYS[day.weekday()]
        windows = [(ws, we) for p in people.values() for d, ws, we in p.working_hours if d == wd]
        if is_working_day(day) and windows:
            t = _ceil_step(max(earliest, _at(day, min(w[0] for w in windows))))
            day_end = _at(day, max(w[1] for w in windows))
            while t + req.duration <= day_end:
                e = t + req.duration
                p = _try(req, t, e, fixed, roles, candidates, people, rooms, busy)
                if p is not None:
                    return p
                t += STEP
        day += timedelta(days=1)
    return None


def _try(
    req: SlotRequest,
    s: datetime,
    e: datetime,
    fixed: list[Professional],
    roles: list[str],
    candidates: dict[str, list[Professional]],
    people: dict[str, Professional],
    rooms: list[Room],
    busy: dict[str, list[Interval]],
) -> Proposal | None:
    if req.family_windows and not any(w[0] <= s and e <= w[1] for w in req.family_windows):
        return None
    for p in fixed:
        if not (p.works(s, e) and free(busy.get(f"person:{p.professional_id}", ()), s, e)):
            return None
    ok = {pid: p.works(s, e) and free(busy.get(f"person:{pid}", ()), s, e) for pid, p in people.items()}
    chosen = _assign(roles, candidates, ok, {p.professional_id for p in fixed})
    if chosen is None:
        return None
    room = next((r for r in rooms if free(busy.get(f"room:{r.room_id}", ()), s, e)), None)
    if room is None:
        return None
    assignments = [(p.roles[0], p.professional_id) for p in fixed] + list(
        zip(roles, (p.professional_id for p in chosen), strict=True)
    )
    taken = {pid for _, pid in assignments}
    alternatives = {
        r: [p.professional_id for p in candidates[r] if ok[p.professional_id] and p.professional_id not in taken] for r in roles
    }
    everyone = fixed + chosen
    return Proposal(
        starts_at=s,
        ends_at=e,
        room_id=room.room_id,
        assignments=assignments,
        interpreter_needed=req.language == "other" or any(req.language not in p.languages for p in everyone),
        alternatives=alternatives,
    )


def substitutes(
    role: str,
    starts_at: datetime,
    ends_at: datetime,
    roster: Sequence[Professional],
    municipality: str,
    language: str,
    busy: dict[str, list[Interval]],
    exclude: Iterable[str],
) -> list[str]:
    """People who could take a declined role at the same time, best first."""
    return [
        p.professional_id
        for p in rank(role, roster, municipality, language, exclude=exclude)
        if p.works(starts_at, ends_at) and free(busy.get(f"person:{p.professional_id}", ()), starts_at, ends_at)
    ]
