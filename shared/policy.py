"""Who may make which request: one policy for every command and query of every service.

Plain Python, no I/O. The runtime (shared/service.py) asks :func:`decide` before a handler runs,
with the verified caller (a :class:`Caller`: the token's principal), what the request declares it
needs (its :class:`Access`, a ``ClassVar`` on the request model) and the caller's relation to the
case (a :class:`CaseRelation` from the case-access read model, shared/case_access.py).

The rules (``../shared/domain.md``, "Who may see what"; Client Data Act 703/2023):
- a worker reaches a case when on the case's team, a participant of its meetings, or one of its
  responsible workers; a team lead reaches their team's cases; nobody reaches other teams' cases;
- statisticians get aggregates only; ops gets no personal data;
- every read of personal data states a purpose from :data:`PURPOSES` (no default);
- consent is recorded or withdrawn only by a worker of the case or the guardian themself;
- a statutory act of social work (the 7-working-day decision, the urgency assessment) only by a
  social worker (the ``social_worker`` role) on the case's team or responsible for it;
- a case is transferred to another team only by its own team (a worker, social worker or the team
  lead of the case's current team); afterwards the old team no longer reaches it;
- a municipality's adoption stage of the model (no family data) is recorded by a statistician, a team
  lead or a roster admin;
- a guardian (signed in with strong identification) reaches only their own child's plan, meetings
  and access log, and gives or withdraws consent. Nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["read", "write", "aggregate", "roster_admin", "operate", "record_statistics"]

WORKER, TEAM_LEAD, STATISTICIAN, OPS, ROSTER_ADMIN = "worker", "team_lead", "statistician", "ops", "roster_admin"
SOCIAL_WORKER = "social_worker"
ROLES: dict[str, str] = {
    WORKER: "A social or family worker: reaches the cases of their teams and the cases they take part in.",
    SOCIAL_WORKER: "A qualified social worker (sosiaalityöntekijä; usually with the worker role too): reaches cases as a "
    "worker does, and alone records the statutory acts of social work on their team's cases: the 7-working-day "
    "decision, the urgency assessment, the start and completion of the service-need assessment, and a "
    "restriction of a guardian's access.",
    TEAM_LEAD: "A team lead: reaches their teams' cases, keeps the roster and records the adoption stage of the model.",
    STATISTICIAN: "Statistics and management: aggregates only, never a family's data; records a municipality's "
    "adoption stage of the model.",
    OPS: "Operations: health, ids and counts; no personal data.",
    ROSTER_ADMIN: "Keeps the roster of professionals and rooms and records the adoption stage of the model (no family data).",
}
"""Staff roles the policy knows (the token's roles claim). A guardian has no role: the token's kind says guardian."""

PURPOSES: dict[str, str] = {
    "case_work": "Working on the family's case (assessment, support, planning).",
    "meeting_preparation": "Preparing or holding a joint meeting.",
    "plan_follow_up": "Following up the family's plan and its follow-ups.",
    "deadline_follow_up": "Following statutory deadlines (the team's list).",
    "delivery_follow_up": "Following up failed notifications.",
    "access_request": "Answering the person's own request to know who has read their data (703/2023 s. 11).",
    "supervision": "A team lead's supervision of the team's work.",
    "own_data": "A guardian reads their own child's data.",
    "operations_review": "Operations: looking into a rejected or dead-lettered message (ops only).",
}
"""Why personal data is read: one of these is required on every such read and written to the access log."""

RETIRED, UNAUTHENTICATED, FORBIDDEN, PURPOSE_REQUIRED = "version_retired", "unauthenticated", "forbidden", "purpose_required"


@dataclass(frozen=True)
class Access:
    """What a request needs. Declared once per request model (``access: ClassVar[Access]``).

    ``case``: the field naming the case (``case_id``, or ``case_ids`` for a list), None when the
    request is not about one case. ``team``: the field naming a team (team lists). ``guardian``: a
    matched guardian may make it. ``consent``: it records or withdraws consent. ``role``: a staff
    role the caller must hold (a statutory act of social work: ``social_worker``); the caller must
    then also be on the case's team or responsible for it (a meeting participant is not).
    ``team_only``: only the case's own team may make it (its workers and team lead; a meeting
    participant or a responsible worker from another team may not): a transfer of the case."""

    action: Action
    personal: bool = True
    case: str | None = "case_id"
    team: str | None = None
    guardian: bool = False
    consent: bool = False
    role: str | None = None
    team_only: bool = False

    @property
    def needs_purpose(self) -> bool:
        return self.action in ("read", "operate") and self.personal


@dataclass(frozen=True)
class Caller:
    """The verified caller as the policy sees it (from the token's principal)."""

    person_id: str
    kind: Literal["staff", "guardian"]
    roles: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    guardian_key: str | None = None  # a guardian: the keyed hash of their henkilötunnus


@dataclass(frozen=True)
class CaseRelation:
    """Who stands in which relation to one case (the case-access read model's rows)."""

    case_id: str
    teams: frozenset[str] = frozenset()
    participants: frozenset[str] = frozenset()
    responsible: frozenset[str] = frozenset()
    guardians: frozenset[str] = frozenset()  # keyed hashes
    restricted_guardians: frozenset[str] = frozenset()  # guardian access restricted with a recorded reason


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    reason: str = ""  # machine-readable, no personal data (goes to the audit record's purpose)
    relation: str = ""  # how access was granted: team, participant, responsible, guardian, role

    @property
    def refused(self) -> bool:
        return not self.allowed


ALLOW = Decision(True, relation="role")


REASONS: dict[str, str] = {
    "purpose_missing": "A read of personal data named no purpose (purpose_required).",
    "purpose_unknown": "The purpose is not one of the documented purposes (purpose_required).",
    "own_data_is_for_guardians": "Staff used the guardians' purpose own_data.",
    "not_ops": "An operator's request without the ops role.",
    "operators_read_for_operations_review_only": "An operator read personal data for a purpose other than operations_review.",
    "operations_review_is_for_ops": "Someone other than an operator used the purpose operations_review.",
    "no_role": "The token has no role that may see aggregates.",
    "not_roster_admin": "Keeping the roster needs the team_lead or roster_admin role.",
    "not_statistics_recorder": "Recording statistics needs the statistician, team_lead or roster_admin role.",
    "aggregates_only": "A statistician reads aggregates only, not staff or family data.",
    "no_personal_data_for_role": "The caller's roles see no family's personal data (statistician, ops).",
    "not_social_worker": "A statutory act of social work needs the social_worker role.",
    "not_on_team": "A team's list is for that team's own people.",
    "no_relation_to_case": "The caller is not on the case's team, in its meetings or responsible for it (also a case "
    "that does not exist: a staff app cannot tell the two apart).",
    "consent_by_worker_or_guardian": "Consent is recorded by a worker of the case or by the guardian, not a team lead alone.",
    "not_on_case_team": "Only the case's own team may do this (a transfer), or, for a statutory act, its team or "
    "responsible worker: a meeting participant may not.",
    "no_case_named": "The request must name a case the caller is related to.",
    "not_for_guardians": "Guardians may not make this request.",
    "guardian_purpose_is_own_data": "A guardian reads with the purpose own_data.",
    "not_guardian_of_case": "The guardian is not a guardian of this case.",
    "guardian_access_restricted": "A social worker restricted this guardian's access to the case.",
}
"""Every ``data.reason`` of a ``forbidden`` or ``purpose_required`` refusal, with its meaning (docs/errors.md)."""


def _no(reason: str, code: str = FORBIDDEN) -> Decision:
    return Decision(False, code, reason)


def staff_relation(caller: Caller, rel: CaseRelation) -> str | None:
    """How a staff member is related to the case, or None."""
    if caller.roles & {WORKER, SOCIAL_WORKER}:
        if caller.teams & rel.teams:
            return "team"
        if caller.person_id in rel.participants:
            return "participant"
        if caller.person_id in rel.responsible:
            return "responsible"
    if TEAM_LEAD in caller.roles and caller.teams & rel.teams:
        return "team_lead"
    return None


def decide(
    caller: Caller,
    access: Access,
    *,
    cases: Iterable[CaseRelation] = (),
    team: str | None = None,
    purpose: str | None = None,
) -> Decision:
    """Allowed or refused (``forbidden`` / ``purpose_required``), with a reason code.

    ``cases``: the relation to every case the request names (one per case id; a case the read
    model does not know has empty relations). ``team``: the team the request names, if any."""
    cases = list(cases)
    if not access.needs_purpose:
        purpose = None  # e.g. a consent's purpose: not a reason to read
    elif not purpose:
        return _no("purpose_missing", PURPOSE_REQUIRED)
    elif purpose not in PURPOSES:
        return _no("purpose_unknown", PURPOSE_REQUIRED)
    if caller.kind == "guardian":
        return _guardian(caller, access, cases, purpose)
    if purpose == "own_data":
        return _no("own_data_is_for_guardians")
    roles = caller.roles
    if access.action == "operate":  # operators' own requests (ops.<service>.…): the ops role only
        if OPS not in roles:
            return _no("not_ops")
        # An operator reads personal data (a rejected submission's bytes) to review operations only.
        return ALLOW if purpose in (None, "operations_review") else _no("operators_read_for_operations_review_only")
    if purpose == "operations_review":
        return _no("operations_review_is_for_ops")
    if access.action == "aggregate":
        return ALLOW if roles & {WORKER, SOCIAL_WORKER, TEAM_LEAD, STATISTICIAN, OPS} else _no("no_role")
    if access.action == "roster_admin":
        return ALLOW if roles & {TEAM_LEAD, ROSTER_ADMIN} else _no("not_roster_admin")
    if access.action == "record_statistics":
        return ALLOW if roles & {STATISTICIAN, TEAM_LEAD, ROSTER_ADMIN} else _no("not_statistics_recorder")
    if not access.personal:  # staff data (the roster): any staff role but the statisticians'
        return ALLOW if roles & {WORKER, SOCIAL_WORKER, TEAM_LEAD, OPS, ROSTER_ADMIN} else _no("aggregates_only")
    if not roles & {WORKER, SOCIAL_WORKER, TEAM_LEAD}:
        return _no("no_personal_data_for_role")
    if access.role is not None and access.role not in roles:
        return _no(f"not_{access.role}")
    if access.team is not None:
        if team is None or team not in caller.teams:
            return _no("not_on_team")
    how = ""
    for rel in cases:
        found = staff_relation(caller, rel)
        if found is None:
            return _no("no_relation_to_case")
        if access.consent and found == "team_lead" and not roles & {WORKER, SOCIAL_WORKER}:
            return _no("consent_by_worker_or_guardian")
        if access.role is not None and found == "participant":
            return _no("not_on_case_team")
        if access.team_only and found not in ("team", "team_lead"):
            return _no("not_on_case_team")
        how = how or found
    if access.case is not None and not cases:
        return _no("no_case_named")
    return Decision(True, relation=how or "team")


def _guardian(caller: Caller, access: Access, cases: list[CaseRelation], purpose: str | None) -> Decision:
    if not access.guardian:
        return _no("not_for_guardians")
    if access.needs_purpose and purpose != "own_data":
        return _no("guardian_purpose_is_own_data")
    if not cases or caller.guardian_key is None:
        return _no("no_case_named")
    for rel in cases:
        if caller.guardian_key not in rel.guardians:
            return _no("not_guardian_of_case")
        if caller.guardian_key in rel.restricted_guardians:
            return _no("guardian_access_restricted")
    return Decision(True, relation="guardian")


@dataclass
class Relations:
    """Builds :class:`CaseRelation` values from the read model's (kind, value) rows."""

    case_id: str
    rows: list[tuple[str, str]] = field(default_factory=list)

    def relation(self) -> CaseRelation:
        def of(kind: str) -> frozenset[str]:
            return frozenset(v for k, v in self.rows if k == kind)

        return CaseRelation(
            self.case_id,
            teams=of("team"),
            participants=of("participant"),
            responsible=of("responsible"),
            guardians=of("guardian"),
            restricted_guardians=of("guardian_restricted"),
        )
