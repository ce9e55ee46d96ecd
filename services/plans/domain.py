"""Plans domain. Plain Python, no I/O.

A joint plan is recorded with the frame of the practice model: the concrete things that need
change, actions at home / in the child's everyday environment / elsewhere, how follow-up is done,
the responsible worker(s) (vastuutyöntekijä) from a public service, and the next contact time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from shared.errors import DomainError


@dataclass
class Plan:
    plan_id: UUID
    case_id: UUID
    version: int
    meeting_id: UUID | None
    recorded_by: str
    agreed_at: datetime
    changes_needed: list[str]
    actions: dict[str, list[dict[str, Any]]]  # home | everyday_environment | elsewhere
    worker_contacts_family: str
    family_contacts_worker: str
    responsible_workers: list[dict[str, Any]]
    next_contact_at: datetime
    family_contacts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "active"  # active | closed
    followup_due_fired_at: datetime | None = None

    def timer_subject(self) -> str:
        """The durable timer's identity: one follow-up timer per plan; rescheduling replaces it."""
        return f"timers.plans.followup.{self.plan_id}"


def _missing(field_name: str, en: str, fi: str, sv: str) -> DomainError:
    return DomainError("plan_incomplete", field_name, en=en, fi=fi, sv=sv)


def agree(
    *,
    case_id: UUID,
    meeting_id: UUID | None,
    recorded_by: str,
    now: datetime,
    changes_needed: list[str],
    actions: dict[str, list[dict[str, Any]]],
    worker_contacts_family: str,
    family_contacts_worker: str,
    responsible_workers: list[dict[str, Any]],
    next_contact_at: datetime,
    family_contacts: list[dict[str, Any]],
) -> Plan:
    """Validate the plan frame and create version 1. Errors name what is missing."""
    if not changes_needed:
        raise _missing("changes_needed", "Name at least one concrete thing that needs change.", "Kirjaa vähintään yksi muutosta vaativa asia.", "Ange minst en sak som behöver förändras.")
    if not any(actions.values()):
        raise _missing("actions", "Record at least one action (at home, everyday environment or elsewhere).", "Kirjaa vähintään yksi toimenpide.", "Ange minst en åtgärd.")
    if not responsible_workers:
        raise _missing("responsible_workers", "Name the responsible worker.", "Nimeä vastuutyöntekijä.", "Ange den ansvariga arbetaren.")
    for i, w in enumerate(responsible_workers):
        if not w.get("public_service"):
            raise DomainError(
                "responsible_not_public",
                f"responsible_workers.{i}.public_service",
                en="The responsible worker must work in a public service.",
                fi="Vastuutyöntekijän on oltava julkisen palvelun työntekijä.",
                sv="Den ansvariga arbetaren måste arbeta inom offentlig service.",
            )
    if next_contact_at.tzinfo is None:
        raise DomainError("naive_datetime", "next_contact_at", en="Time needs a time zone.", fi="Ajalle tarvitaan aikavyöhyke.", sv="Tiden behöver en tidszon.")
    if next_contact_at <= now:
        raise DomainError("in_past", "next_contact_at", en="The next contact must be in the future.", fi="Seuraavan yhteydenoton on oltava tulevaisuudessa.", sv="Nästa kontakt måste vara i framtiden.")
    return Plan(
        plan_id=uuid4(),
        case_id=case_id,
        version=1,
        meeting_id=meeting_id,
        recorded_by=recorded_by,
        agreed_at=now,
        changes_needed=changes_needed,
        actions=actions,
        worker_contacts_family=worker_contacts_family,
        family_contacts_worker=family_contacts_worker,
        responsible_workers=responsible_workers,
        next_contact_at=next_contact_at,
        family_contacts=family_contacts,
    )


def followup_fired(plan: Plan | None, *, plan_version: int, now: datetime) -> bool:
    """Record that the follow-up timer fired; False for a stale or unknown timer."""
    if plan is None or plan.status != "active" or plan.version != plan_version:
        return False
    plan.followup_due_fired_at = now
    return True
