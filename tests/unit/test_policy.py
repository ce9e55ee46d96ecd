"""The one policy that decides every request (shared/policy.py), rule by rule."""

from __future__ import annotations

import pytest

from shared.policy import Access, Caller, CaseRelation, decide

CASE = CaseRelation(
    "c1",
    teams=frozenset({"team-a"}),
    participants=frozenset({"w-part"}),
    responsible=frozenset({"w-resp"}),
    guardians=frozenset({"g-key"}),
)
READ, WRITE, CONSENT = Access("read", guardian=True), Access("write"), Access("write", guardian=True, consent=True)


def staff(person: str = "w1", roles: tuple[str, ...] = ("worker",), teams: tuple[str, ...] = ()) -> Caller:
    return Caller(person, "staff", frozenset(roles), frozenset(teams))


def guardian(key: str = "g-key") -> Caller:
    return Caller("010190-990X", "guardian", guardian_key=key)


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        (staff(teams=("team-a",)), True),
        (staff(teams=("team-b",)), False),
        (staff("w-part"), True),
        (staff("w-resp"), True),
        (staff(roles=("team_lead",), teams=("team-a",)), True),
        (staff(roles=("team_lead",), teams=("team-b",)), False),
        (staff(roles=("statistician",), teams=("team-a",)), False),
        (staff(roles=("ops",), teams=("team-a",)), False),
    ],
)
def test_a_case_is_reached_through_team_participation_or_responsibility_only(caller: Caller, allowed: bool) -> None:
    assert decide(caller, READ, cases=[CASE], purpose="case_work").allowed is allowed
    assert decide(caller, WRITE, cases=[CASE]).allowed is allowed


def test_a_read_of_personal_data_without_a_purpose_is_refused_with_purpose_required() -> None:
    decision = decide(staff(teams=("team-a",)), READ, cases=[CASE], purpose=None)
    assert (decision.allowed, decision.code) == (False, "purpose_required")
    assert decide(staff(teams=("team-a",)), READ, cases=[CASE], purpose="curiosity").code == "purpose_required"


def test_a_write_needs_no_purpose_and_a_consents_own_purpose_is_not_mistaken_for_one() -> None:
    assert decide(staff(teams=("team-a",)), CONSENT, cases=[CASE], purpose="share_plan").allowed


def test_statisticians_and_ops_get_aggregates_and_never_personal_data() -> None:
    aggregate = Access("aggregate", personal=False, case=None)
    for role in ("statistician", "ops", "worker"):
        assert decide(staff(roles=(role,)), aggregate).allowed
    team_list = Access("read", case=None, team="team_id")
    assert (
        decide(staff(roles=("statistician",), teams=("team-a",)), team_list, team="team-a", purpose="case_work").code
        == "forbidden"
    )
    assert decide(staff(roles=("ops",), teams=("team-a",)), team_list, team="team-a", purpose="case_work").code == "forbidden"


def test_a_team_list_is_only_for_the_callers_own_team() -> None:
    team_list = Access("read", case=None, team="team_id")
    assert decide(staff(teams=("team-a",)), team_list, team="team-a", purpose="case_work").allowed
    assert not decide(staff(teams=("team-a",)), team_list, team="team-b", purpose="case_work").allowed


def test_consent_is_recorded_by_a_worker_of_the_case_or_the_guardian_but_not_a_team_lead_alone() -> None:
    assert decide(staff("w-part"), CONSENT, cases=[CASE]).allowed
    assert decide(guardian(), CONSENT, cases=[CASE]).allowed
    assert not decide(staff(roles=("team_lead",), teams=("team-a",)), CONSENT, cases=[CASE]).allowed
    assert not decide(guardian("other-key"), CONSENT, cases=[CASE]).allowed


def test_a_guardian_reaches_only_their_own_childs_guardian_requests_with_the_own_data_purpose() -> None:
    assert decide(guardian(), READ, cases=[CASE], purpose="own_data").allowed
    assert not decide(guardian(), READ, cases=[CASE], purpose="case_work").allowed
    assert not decide(guardian("other-key"), READ, cases=[CASE], purpose="own_data").allowed
    assert not decide(guardian(), Access("read"), cases=[CASE], purpose="own_data").allowed  # not a guardian request
    assert not decide(guardian(), WRITE, cases=[CASE]).allowed


def test_a_restricted_guardian_is_refused() -> None:
    restricted = CaseRelation("c1", guardians=frozenset({"g-key"}), restricted_guardians=frozenset({"g-key"}))
    assert decide(guardian(), READ, cases=[restricted], purpose="own_data").reason == "guardian_access_restricted"


def test_staff_cannot_use_the_guardians_purpose_and_a_case_unknown_to_the_read_model_is_refused() -> None:
    assert not decide(staff(teams=("team-a",)), READ, cases=[CASE], purpose="own_data").allowed
    assert not decide(staff(teams=("team-a",)), READ, cases=[CaseRelation("unknown")], purpose="case_work").allowed


def test_the_roster_is_kept_by_team_leads_and_roster_admins() -> None:
    roster = Access("roster_admin", personal=False, case=None)
    assert decide(staff(roles=("team_lead",)), roster).allowed
    assert decide(staff(roles=("roster_admin",)), roster).allowed
    assert not decide(staff(), roster).allowed


SOCIAL_WORK = Access("write", role="social_worker")  # the decision, the urgency assessment


@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        (staff(roles=("worker", "social_worker"), teams=("team-a",)), ""),
        (staff(roles=("social_worker",), teams=("team-a",)), ""),  # the role alone reaches the case as a worker's
        (staff("w-resp", roles=("worker", "social_worker")), ""),  # responsible for the case
        (staff(roles=("team_lead", "social_worker"), teams=("team-a",)), ""),
        (staff(teams=("team-a",)), "not_social_worker"),  # a worker of the team without the role
        (staff(roles=("team_lead",), teams=("team-a",)), "not_social_worker"),
        (staff(roles=("worker", "social_worker"), teams=("team-b",)), "no_relation_to_case"),
        (staff("w-part", roles=("worker", "social_worker")), "not_on_case_team"),  # a meeting's guest
        (staff(roles=("statistician", "social_worker")), "no_relation_to_case"),
    ],
)
def test_a_statutory_act_of_social_work_is_recorded_only_by_a_social_worker_of_the_case(caller: Caller, reason: str) -> None:
    decision = decide(caller, SOCIAL_WORK, cases=[CASE])
    assert (decision.allowed, decision.reason) == (not reason, reason)
    if reason:
        assert decision.code == "forbidden"


def test_a_guardian_never_records_a_statutory_act_of_social_work() -> None:
    assert decide(guardian(), SOCIAL_WORK, cases=[CASE]).reason == "not_for_guardians"


def test_the_decision_and_the_urgency_assessment_declare_the_social_worker_role() -> None:
    from shared.contracts.referral import AssessUrgency, RecordDecision
    from shared.contracts.versions import SELF_NAMING

    for model in (RecordDecision, AssessUrgency):
        assert model.access == SOCIAL_WORK
        assert not set(model.model_fields) & {*SELF_NAMING, "social_worker_id", "assessed_by"}


def test_an_operator_reads_personal_data_only_to_review_operations() -> None:
    raw_read = Access("operate", case=None)  # a rejected submission's bytes (ops.referral.rejected.v1)
    erase = Access("operate", personal=False)  # an erasure order reads nothing: no read purpose
    ops = staff("ops-1", roles=("ops",))
    assert decide(ops, raw_read, purpose="operations_review").allowed
    for purpose in ("case_work", "supervision", "access_request"):
        decision = decide(ops, raw_read, purpose=purpose)
        assert (decision.code, decision.reason) == ("forbidden", "operators_read_for_operations_review_only"), purpose
    assert decide(ops, erase, cases=[CASE], purpose="retention_ended").allowed
    assert decide(staff(roles=("worker",), teams=("team-a",)), raw_read, purpose="operations_review").reason == "not_ops"


def test_the_readme_describes_every_role_as_the_policy_does() -> None:
    from pathlib import Path

    from shared.policy import ROLES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for role, text in ROLES.items():
        assert f"| `{role}` | {text} |" in readme, role


def test_every_reason_the_policy_can_give_is_documented_with_its_meaning() -> None:
    import ast
    from pathlib import Path

    from shared.contracts import REQUESTS
    from shared.policy import REASONS

    source = (Path(__file__).resolve().parents[2] / "shared" / "policy.py").read_text()
    given = {
        call.args[0].value
        for call in ast.walk(ast.parse(source))
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "_no" and isinstance(call.args[0], ast.Constant)
    }
    given |= {f"not_{r.model.access.role}" for r in REQUESTS if r.model.access is not None and r.model.access.role}
    assert given and given == set(REASONS), given ^ set(REASONS)
