"""Contracts of the referral service: the front door's intake submission and the events it emits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from .base import Contract, Event, FieldError
from .common import ContactPoint, Id, Language, ShortText

INTAKE_SUBJECT = "intake.referral.v1"
"""Front-door systems publish :class:`ReferralSubmission` here (JetStream, stream INTAKE) with
``Nats-Msg-Id`` set to their own submission id."""

Channel = Literal[
    "phone",  # perheiden puhelinlinja, entered by an operator
    "e_contact",  # sähköinen yhteydenottolomake, by the family itself
    "guidance",  # ohjaus ja neuvonta
    "concern_with_family",  # Lapset puheeksi: a close worker raises a concern together with the family
    "assessment_request",  # SHL 35 § request for assessment by a professional
    "child_protection_notification",  # LSL 25 § lastensuojeluilmoitus
    "joint_contact",  # LSL 25 a § yhteydenotto yhdessä perheen kanssa
]

ORGANISATION_TYPES: dict[str, str] = {
    "family": "perhe itse (the family itself)",
    "child_health_clinic": "lastenneuvola (child health clinic)",
    "maternity_clinic": "äitiysneuvola (maternity clinic)",
    "early_childhood_education": "varhaiskasvatus (early childhood education, day care)",
    "school_pupil_welfare": "koulun oppilashuolto (school pupil welfare: nurse, psychologist, curator)",
    "school_social_worker": "koulukuraattori (school social worker)",
    "family_counselling_clinic": "kasvatus- ja perheneuvola (family counselling clinic)",
    "substance_abuse_clinic": "A-klinikka / päihdepalvelut (substance-abuse clinic)",
    "youth_health_services": "nuorten terveyspalvelut (youth health services)",
    "youth_services": "nuorisopalvelut (youth services)",
    "family_work": "perhetyö (family work)",
    "family_law_unit": "perheoikeudelliset palvelut (family law unit)",
    "shelter": "turvakoti (shelter)",
    "police": "poliisi (police)",
    "psychiatry": "psykiatria (adult, adolescent or child psychiatry)",
    "disability_services": "vammaispalvelut (disability services)",
    "other": "muu (other organisation)",
}
"""The documented list of referrer organisation types (ilmoittajan / lähettävän tahon tyyppi)."""

OrganisationType = Literal[
    "family",
    "child_health_clinic",
    "maternity_clinic",
    "early_childhood_education",
    "school_pupil_welfare",
    "school_social_worker",
    "family_counselling_clinic",
    "substance_abuse_clinic",
    "youth_health_services",
    "youth_services",
    "family_work",
    "family_law_unit",
    "shelter",
    "police",
    "psychiatry",
    "disability_services",
    "other",
]

FreeText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class ChildInfo(Contract):
    """A child the referral concerns. Either a henkilötunnus or a date of birth is given."""

    given_name: ShortText = Field(description="Child's given name.")
    family_name: ShortText | None = Field(default=None, description="Child's family name.")
    personal_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=11)] | None = Field(
        default=None, description="Henkilötunnus (11 characters), when the child has one."
    )
    date_of_birth: date | None = Field(default=None, description="Date of birth, for a child without henkilötunnus.")


class GuardianInfo(Contract):
    """A parent or guardian (huoltaja) to be contacted."""

    name: ShortText = Field(description="Full name.")
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = Field(
        default=None, description="Phone number as given; normalised to E.164 by the service."
    )
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = Field(
        default=None, description="E-mail address."
    )
    language: Language = Field(default="fi", description="Language the guardian is contacted in.")


class ReferrerInfo(Contract):
    """The organisation or person who made the referral (ilmoittaja / lähettävä taho)."""

    organisation_type: OrganisationType = Field(description="Kind of referring organisation, from the documented list.")
    organisation: ShortText | None = Field(default=None, description="Name of the organisation or unit.")
    name: ShortText | None = Field(default=None, description="Name of the person who referred.")
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = None


ConcernCategory = Literal[
    "parenting",
    "child_development",
    "child_mental_health",
    "school_or_daycare",
    "family_relationships",
    "violence",
    "substance_abuse",
    "parent_wellbeing",
    "finances_or_housing",
    "other",
]
"""Concern category, used with the municipality to route the referral to a team."""

CallerRole = Literal["guardian", "child", "relative", "professional", "other"]


class PhoneCallInfo(Contract):
    """Channel ``phone``: the family phone line (perheiden puhelinlinja); an operator enters it."""

    operator_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="Staff id of the operator who took the call."
    )
    caller_role: CallerRole = Field(default="guardian", description="Who called.")
    call_started_at: datetime | None = Field(default=None, description="When the call started (aware datetime).")
    callback_requested: bool = Field(default=False, description="The caller asked to be called back.")


class EContactInfo(Contract):
    """Channel ``e_contact``: the electronic contact form (sähköinen yhteydenottolomake), filled in by the family."""

    form_version: ShortText | None = Field(default=None, description="Version of the form the family used.")
    preferred_contact: Literal["phone", "email", "either"] = Field(
        default="either", description="How the family wants to be contacted."
    )
    best_time_to_call: ShortText | None = Field(default=None, description="When the family can be reached, in their words.")
    strong_authentication: bool = Field(default=False, description="The family logged in with strong electronic identification.")


class GuidanceInfo(Contract):
    """Channel ``guidance``: the guidance and advice service (ohjaus ja neuvonta) passed the family on."""

    advisor_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="Staff id of the adviser."
    )
    advice_given: FreeText = Field(default="", description="What advice was already given.")


class ConcernWithFamilyInfo(Contract):
    """Channel ``concern_with_family``: a close worker raised a concern together with the family (Lapset puheeksi)."""

    method: Literal["lapset_puheeksi", "other_discussion"] = Field(
        default="lapset_puheeksi", description="How the concern was discussed."
    )
    discussed_on: date | None = Field(default=None, description="Day the concern was discussed with the family.")
    family_view: FreeText = Field(default="", description="The family's own view of the situation.")


class AssessmentRequestInfo(Contract):
    """Channel ``assessment_request``: a professional's request for assessment (SHL 35 §)."""

    family_informed: bool = Field(description="The family was told about the request.")
    family_agrees: bool | None = Field(default=None, description="Whether the family agrees (None: not asked or unknown).")


class ChildProtectionNotificationInfo(Contract):
    """Channel ``child_protection_notification``: lastensuojeluilmoitus (LSL 25 §)."""

    obliged_notifier: bool = Field(
        default=True, description="The notifier is under the statutory duty to notify (a professional, LSL 25 § 1 mom.)."
    )
    family_informed: bool = Field(default=False, description="The family was told about the notification.")
    observed: FreeText = Field(default="", description="What the notifier observed, in their words.")


class JointContactInfo(Contract):
    """Channel ``joint_contact``: a contact made together with the family (LSL 25 a §) instead of a notification."""

    guardian_present: bool = Field(description="A guardian took part in making the contact (required by LSL 25 a §).")
    contact_made_on: date | None = Field(default=None, description="Day the contact was made together.")


class ReferralSubmission(Contract):
    """What a front-door system publishes to ``intake.referral.v1``."""

    submission_id: Id = Field(description="The front door's own id; also the message's Nats-Msg-Id.")
    channel: Channel = Field(description="How the contact came in.")
    municipality: ShortText = Field(description="Municipality of the family (e.g. 'Porvoo').")
    submitted_at: datetime = Field(description="When the front door received it (aware datetime).")
    children: list[ChildInfo] = Field(min_length=1, max_length=12, description="Children concerned.")
    guardians: list[GuardianInfo] = Field(default_factory=list, max_length=6, description="Guardians to contact.")
    language: Language = Field(default="fi", description="Language of service for the family.")
    interpreter_needed: bool = Field(default=False, description="Whether an interpreter is needed.")
    concern: FreeText = Field(default="", description="The concern in the referrer's or family's words.")
    referrer: ReferrerInfo | None = Field(default=None, description="Who referred; absent when the family itself made contact.")
    urgent: bool = Field(default=False, description="Immediate danger reported at intake.")
    consent_to_convene: bool = Field(default=False, description="The family agreed that the family-centre team may be convened.")
    other_language: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z]{2,3}$")] | None = Field(
        default=None, description="ISO 639 code of the family's language when ``language`` is 'other'."
    )
    concern_category: ConcernCategory | None = Field(default=None, description="Concern category, for routing to a team.")
    phone_call: PhoneCallInfo | None = Field(default=None, description="Channel 'phone': required.")
    e_contact: EContactInfo | None = Field(default=None, description="Channel 'e_contact': optional form details.")
    guidance: GuidanceInfo | None = Field(default=None, description="Channel 'guidance': required.")
    concern_with_family: ConcernWithFamilyInfo | None = Field(
        default=None, description="Channel 'concern_with_family': optional details."
    )
    assessment_request: AssessmentRequestInfo | None = Field(
        default=None, description="Channel 'assessment_request': optional details."
    )
    child_protection_notification: ChildProtectionNotificationInfo | None = Field(
        default=None, description="Channel 'child_protection_notification': optional details."
    )
    joint_contact: JointContactInfo | None = Field(default=None, description="Channel 'joint_contact': required.")


CHANNEL_DETAILS = (
    "phone_call",
    "e_contact",
    "guidance",
    "concern_with_family",
    "assessment_request",
    "child_protection_notification",
    "joint_contact",
)
"""The channel-specific sub-objects of a submission; only the one matching ``channel`` may be given."""


class ReferralReceived(Event):
    """A valid referral was stored and a case opened (yhteydenotto vastaanotettu)."""

    event_type: ClassVar[str] = "referral.received"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID = Field(description="Id of the stored referral.")
    submission_id: str = Field(description="The front door's submission id.")
    channel: Channel = Field(description="How the contact came in.")
    municipality: str = Field(description="Municipality of the family.")
    received_at: datetime = Field(description="When the referral service accepted it (UTC).")
    language: Language = Field(description="Language of service for the family.")
    interpreter_needed: bool = Field(description="Whether an interpreter is needed.")
    urgent: bool = Field(description="Immediate danger reported at intake.")
    statutory: bool = Field(description="A child-protection notification or request: the 7-working-day decision applies.")
    child_count: int = Field(description="Number of children concerned (no identities travel).")
    consent_to_convene: bool = Field(description="The family agreed to convening the family-centre team.")
    decision_due_by: date | None = Field(
        default=None,
        description="Statutory cases: the last day (Helsinki date) to decide on a service-need assessment (7 working days).",
    )
    referrer_type: str | None = Field(default=None, description="Organisation type of the referrer.")
    contacts: list[ContactPoint] = Field(
        default_factory=list, description="Guardians and referrer, for the notifications directory."
    )


class ReferralRejected(Event):
    """A submission failed validation. The raw submission is kept with its reasons; fix and resend."""

    event_type: ClassVar[str] = "referral.rejected"
    stream: ClassVar[str] = "REFERRAL"

    case_id: UUID | None = Field(default=None, description="Always empty: no case was opened.")  # type: ignore[assignment]
    submission_id: str = Field(description="The front door's submission id ('unknown' when unreadable).")
    rejection_id: UUID = Field(description="Id of the stored rejected submission.")
    reasons: list[FieldError] = Field(description="Machine-readable reasons (field, code, message fi/sv/en).")


class CaseQuery(Contract):
    """``query.referral.case.v1``: one case with its referrals, consents, deadlines and history (staff app)."""

    case_id: UUID
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read.")


class TeamCasesQuery(Contract):
    """``query.referral.team_cases.v1``: the open cases of a team."""

    team_id: Id
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read.")


class DeadlinesDueQuery(Contract):
    """``query.referral.deadlines_due.v1``: statutory deadlines due within the next N working days."""

    working_days: int = Field(ge=0, le=90, description="Horizon in working days (0: due today or overdue).")
    team_id: Id | None = Field(default=None, description="Only this team's cases.")
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="deadline follow-up", description="Why the data is read.")


class AccessLogQuery(Contract):
    """``query.referral.access_log.v1``: who has seen one person's data, when, what and why
    (tietojen luovutus- ja käyttöloki; Client Data Act 703/2023 s. 11). Give the child's
    henkilötunnus (all of their cases) or one case id. This read is audited too."""

    personal_id: str | None = Field(
        default=None, min_length=11, max_length=11, description="The child's henkilötunnus (never logged or stored in clear)."
    )
    case_id: UUID | None = Field(default=None, description="One case instead of a person.")
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="access log request", description="Why the log is read (e.g. the person's own request).")

    @model_validator(mode="after")
    def _one_subject(self) -> AccessLogQuery:
        if (self.personal_id is None) == (self.case_id is None):
            raise ValueError("give exactly one of personal_id and case_id")
        return self


class UnlinkReferral(Contract):
    """``cmd.referral.unlink.v1``: undo a wrong link; the referral gets a case of its own."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    referral_id: UUID
    recorded_by: Id = Field(description="Staff id.")
    reason: FreeText = Field(default="", description="Why the link was wrong.")


ConsentPurpose = Literal["convene_team", "invite_referrer", "share_plan", "tell_referrer_outcome"]
"""What the family agreed to: convening the family-centre team, inviting the referrer to the first
meeting, sharing the joint plan with a named party, telling the referrer the outcome."""


class ConsentGiven(Event):
    """The family gave consent for one purpose (and recipient), recorded in the consent ledger."""

    event_type: ClassVar[str] = "consent.given"
    stream: ClassVar[str] = "REFERRAL"

    consent_id: UUID = Field(description="Id of the ledger entry.")
    purpose: ConsentPurpose = Field(description="What the consent is for.")
    recipient: str | None = Field(
        default=None, description="The party information may go to (a party id or organisation), when the purpose names one."
    )
    given_by: str = Field(description="Contact id of the guardian (or the child) who consented.")
    recorded_by: str = Field(description="Staff id who recorded it.")
    valid_until: date | None = Field(default=None, description="Last day the consent is valid, if limited.")


class ConsentWithdrawn(Event):
    """Consent was withdrawn: it stops everything not yet shared."""

    event_type: ClassVar[str] = "consent.withdrawn"
    stream: ClassVar[str] = "REFERRAL"

    consent_id: UUID
    purpose: ConsentPurpose
    recipient: str | None = None
    withdrawn_by: str = Field(description="Contact id of the person who withdrew it.")
    recorded_by: str


DeadlineKind = Literal["assessment_decision", "assessment_completion"]
"""assessment_decision: decide within 7 working days whether to start a service-need assessment
(LSL 26 §, SHL 36 §); assessment_completion: complete it within 3 months of its start (LSL 27 §)."""


class RecordConsent(Contract):
    """``cmd.referral.record_consent.v1``: record the family's consent for one purpose (and recipient)."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    purpose: ConsentPurpose
    recipient: Id | None = Field(default=None, description="Party id or organisation the consent names (share_plan needs one).")
    given_by: Id = Field(description="Contact id of the guardian (or child) who consented, e.g. 'guardian-1'.")
    recorded_by: Id = Field(description="Staff id.")
    valid_until: date | None = None


class WithdrawConsent(Contract):
    """``cmd.referral.withdraw_consent.v1``: withdraw a consent; it stops everything not yet shared."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    consent_id: UUID
    withdrawn_by: Id = Field(description="Contact id of the person who withdrew it.")
    recorded_by: Id = Field(description="Staff id.")


class StartAssessment(Contract):
    """``cmd.referral.start_assessment.v1``: the social worker decided to start the service-need assessment."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    social_worker_id: Id
    started_on: date | None = Field(default=None, description="Helsinki date it started; today when empty.")


class CompleteAssessment(Contract):
    """``cmd.referral.complete_assessment.v1``: the service-need assessment was completed (outcome category)."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    social_worker_id: Id
    outcome: AssessmentOutcome
    completed_on: date | None = Field(default=None, description="Helsinki date; today when empty.")


class ReferralUrgent(Event):
    """Immediate danger was reported at intake: the municipality's on-duty social worker is told at once."""

    event_type: ClassVar[str] = "referral.urgent"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID
    municipality: str
    channel: Channel
    team_id: str | None = Field(
        default=None, description="The municipality's on-duty social work team (sosiaalipäivystys), or the routed team."
    )


class ReferralAssigned(Event):
    """The referral was routed to a team by municipality and concern (routing is configuration data)."""

    event_type: ClassVar[str] = "referral.assigned"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID
    team_id: str = Field(description="Id of the team the case is assigned to.")
    municipality: str
    concern_category: str | None = Field(default=None, description="Concern category used for routing.")


class ReferralLinked(Event):
    """A new referral about a child with an open case was linked to that case instead of opening a second one."""

    event_type: ClassVar[str] = "referral.linked"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID
    submission_id: str
    channel: Channel
    repeat_count: int = Field(description="How many referrals the case now has.")
    urgent: bool = Field(default=False, description="Immediate danger reported with this referral.")
    statutory: bool = Field(default=False, description="This referral starts a 7-working-day decision deadline.")
    decision_due_by: date | None = Field(default=None, description="When it does: the last day (Helsinki date) to decide.")
    referrer_type: str | None = Field(default=None, description="Organisation type of the referrer.")
    language: Language | None = Field(default=None, description="Language of service given with this referral.")
    contacts: list[ContactPoint] = Field(
        default_factory=list, description="Guardians and referrer of this referral, e.g. to acknowledge it to a new referrer."
    )


class ReferralUnlinked(Event):
    """A wrong link was undone: the referral now has a case of its own (``case_id``)."""

    event_type: ClassVar[str] = "referral.unlinked"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID
    previous_case_id: UUID
    recorded_by: str


class DeadlineApproaching(Event):
    """A statutory deadline is near (configurable lead) and its step is not recorded yet."""

    event_type: ClassVar[str] = "referral.deadline_approaching"
    stream: ClassVar[str] = "REFERRAL"

    deadline: DeadlineKind
    due_by: date = Field(description="Last day (Helsinki date).")
    team_id: str | None = None


class DeadlineBreached(Event):
    """A statutory deadline passed without its step being recorded."""

    event_type: ClassVar[str] = "referral.deadline_breached"
    stream: ClassVar[str] = "REFERRAL"

    deadline: DeadlineKind
    due_by: date
    team_id: str | None = None


class AssessmentStarted(Event):
    """The social worker decided to start a service-need assessment (palvelutarpeen arviointi)."""

    event_type: ClassVar[str] = "assessment.started"
    stream: ClassVar[str] = "REFERRAL"

    started_on: date = Field(description="Helsinki date the assessment started.")
    complete_by: date = Field(description="Last day to complete it (3 months).")
    social_worker_id: str


AssessmentOutcome = Literal["services_started", "no_need_for_services", "referred_elsewhere", "child_welfare_client", "other"]


class AssessmentCompleted(Event):
    """The service-need assessment was completed. The referrer is told the outcome category only."""

    event_type: ClassVar[str] = "assessment.completed"
    stream: ClassVar[str] = "REFERRAL"

    completed_on: date
    outcome: AssessmentOutcome = Field(description="Outcome category; no details travel.")
    social_worker_id: str
    referrer_may_be_told: bool = Field(description="The law or the family's consent allows telling the referrer.")


EVENTS = (
    (ReferralReceived, "referral", ("meetings", "notifications")),
    (ReferralRejected, "referral", ("front door",)),
    (ReferralUrgent, "referral", ("notifications",)),
    (ReferralAssigned, "referral", ("notifications", "staff apps")),
    (ReferralLinked, "referral", ("meetings", "notifications")),
    (ReferralUnlinked, "referral", ("meetings",)),
    (DeadlineApproaching, "referral (durable timer)", ("notifications",)),
    (DeadlineBreached, "referral (durable timer)", ("notifications",)),
    (AssessmentStarted, "referral", ("meetings",)),
    (AssessmentCompleted, "referral", ("notifications",)),
    (ConsentGiven, "referral", ("meetings", "plans", "notifications")),
    (ConsentWithdrawn, "referral", ("meetings", "plans", "notifications")),
)
REQUESTS = (
    ("query.referral.case.v1", CaseQuery, "One case with its referrals, consents, deadlines and history (audited)."),
    ("query.referral.team_cases.v1", TeamCasesQuery, "Open cases of a team (audited)."),
    ("query.referral.deadlines_due.v1", DeadlinesDueQuery, "Statutory deadlines due in the next N working days (audited)."),
    (
        "query.referral.access_log.v1",
        AccessLogQuery,
        "Who has read one person's (or one case's) data: the append-only audit log (audited).",
    ),
    ("cmd.referral.unlink.v1", UnlinkReferral, "Undo a wrong link: the referral gets a new case (referral.unlinked)."),
    ("cmd.referral.record_consent.v1", RecordConsent, "Record consent per purpose and recipient (consent.given)."),
    ("cmd.referral.withdraw_consent.v1", WithdrawConsent, "Withdraw a consent (consent.withdrawn)."),
    (
        "cmd.referral.start_assessment.v1",
        StartAssessment,
        "Record the start of the service-need assessment (assessment.started).",
    ),
    (
        "cmd.referral.complete_assessment.v1",
        CompleteAssessment,
        "Record the completed assessment and its outcome (assessment.completed).",
    ),
)

CompleteAssessment.model_rebuild()
