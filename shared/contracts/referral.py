"""Contracts of the referral service: the front door's intake submission and the events it emits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from shared.policy import SOCIAL_WORKER, Access

from .audit import AccessLogAnswer
from .base import MULTILINE, Contract, Event, FieldError
from .common import ContactPoint, Id, Language, ShortText
from .personal import Personal
from .versions import successor

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

FreeText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000), MULTILINE]
"""Free text: newline and tab allowed, no other control character."""


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
    personal_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=11)] | None = Field(
        default=None,
        description="The guardian's henkilötunnus, when known. Lets the guardian, signed in with strong "
        "identification, reach their child's plan, meetings and access log and give or withdraw consent. "
        "Stored only as a keyed hash; never in an event, log or reply.",
    )


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
    submitted_at: datetime = Field(
        description="When the front door received it (aware datetime); the statutory clocks start here. "
        "Plausibility bounds, against the referral service's clock at receipt: at most 5 minutes ahead "
        "(clock skew; KOOLLE_REFERRAL_SUBMITTED_AT_MAX_AHEAD_SECONDS) and at most 30 days old "
        "(a front door offline that long; KOOLLE_REFERRAL_SUBMITTED_AT_MAX_AGE_DAYS). Outside them the "
        "submission is rejected with submitted_at_in_future or submitted_at_too_old."
    )
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
    received_at: datetime = Field(
        description="The receipt (vireilletulo, UTC): the front door's ``submitted_at``, never later than the moment the "
        "referral service handled it. Every statutory clock starts here."
    )
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
    contacts: Personal[list[ContactPoint]] = Field(
        default_factory=list, description="Guardians and referrer, for the notifications directory."
    )
    guardian_keys: list[str] = Field(
        default_factory=list,
        description="Keyed hashes (HMAC-SHA256) of the guardians' henkilötunnus, when the intake named them: "
        "every service matches a signed-in guardian to the case with them. Not reversible without the key.",
    )
    handled_at: datetime | None = Field(
        default=None,
        description="When the referral service handled it (UTC); later than ``received_at`` when a front door sent late.",
    )
    urgency_due_at: datetime | None = Field(
        default=None,
        description="A child-protection notification or an urgent referral: when its urgency assessment is due (UTC).",
    )
    team_id: str | None = Field(
        default=None,
        description="The team the routing assigned the new case to: the same team as the ``referral.assigned`` published "
        "with this event. The services take a new case's team from here (one event per referral less to consume); "
        "``referral.assigned`` remains the event of a team's feed. Empty only in events published before it was added.",
    )
    intake_consent_id: UUID | None = Field(
        default=None,
        description="When ``consent_to_convene``: the consent ledger entry of that consent (purpose ``convene_team``, "
        "recorded by ``front-door``, given by the first guardian named). A new case's intake consent is announced here "
        "and has no ``consent.given`` of its own; one given with a linked referral, and every later one, has. Empty in "
        "events published before it was added (their consent has its ``consent.given``).",
    )


class ReferralRejected(Event):
    """A submission failed validation. The raw submission is kept with its reasons; fix and resend."""

    event_type: ClassVar[str] = "referral.rejected"
    stream: ClassVar[str] = "REFERRAL"

    case_id: UUID | None = Field(default=None, description="Always empty: no case was opened.")  # type: ignore[assignment]
    submission_id: str = Field(
        description="The front door's submission id: the body's, or for unreadable input (not JSON, invalid "
        "UTF-8, an empty body) the message's Nats-Msg-Id; 'unknown' only when neither is a valid id."
    )
    rejection_id: UUID = Field(description="Id of the stored rejected submission.")
    reasons: list[FieldError] = Field(
        description="Machine-readable reasons (field, code, message fi/sv/en). Codes include json_invalid, "
        "control_character, submission_id_reused (the id already opened a referral with other content), "
        "submitted_at_in_future, submitted_at_too_old; services/referral/README.md lists them all."
    )


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
    """The family gave consent for one purpose (and recipient), recorded in the consent ledger. The
    consent to convene given at the intake of a new case is announced by its ``referral.received``
    instead (``consent_to_convene``, ``intake_consent_id``)."""

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
"""assessment_decision: decide within 7 working days of receipt whether to start a service-need
assessment (LSL 26 §, SHL 36 §); assessment_completion: complete it within 3 months of receipt
(asian vireilletulosta, LSL 27 §, SHL 36 §)."""

DecisionOutcome = Literal["start_assessment", "not_needed", "child_protection_client"]
"""The 7-working-day decision (päätös palvelutarpeen arvioinnin aloittamisesta): start the service-need
assessment; no assessment, it is evidently unnecessary (ilmeisen tarpeeton; the case closes); the
child becomes a child-protection client at once (lastensuojelun asiakkuus alkaa heti)."""


class RecordConsent(Contract):
    """``cmd.referral.record_consent.v1``: record the family's consent for one purpose (and recipient)."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    purpose: ConsentPurpose
    recipient: Id | None = Field(
        default=None,
        description="Party id or organisation the consent names (share_plan needs one: recipient_required). For "
        "share_plan use a party_id of the plan's other_parties (query.plans.plan.v2), whose contact the plan holds: "
        "the consent sends the case's current plan to that party at once (plan.shared). An id the plan does not "
        "name is shared with as a consented party all the same, and without a contact its delivery fails "
        "(notification.failed, reason no_contact_details; query.notifications.failed.v2).",
    )
    given_by: Id = Field(
        description="Contact id of the guardian (or child) who consented, e.g. 'guardian-1' (the case view's "
        "referrals[].contacts). Required when a worker records it (missing otherwise); a guardian recording their "
        "own consent leaves it out."
    )
    recorded_by: Id = Field(description="Staff id.")
    valid_until: date | None = None


class WithdrawConsent(Contract):
    """``cmd.referral.withdraw_consent.v1``: withdraw a consent; it stops everything not yet shared."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    consent_id: UUID
    withdrawn_by: Id = Field(
        description="Contact id of the person who withdrew it (the case view's referrals[].contacts). Required when a "
        "worker records it (missing otherwise); a guardian withdrawing their own consent leaves it out."
    )
    recorded_by: Id = Field(description="Staff id.")


class StartAssessment(Contract):
    """``cmd.referral.start_assessment.v1``: the social worker decided to start the service-need assessment."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    social_worker_id: Id
    started_on: date | None = Field(default=None, description="Helsinki date it started; today when empty.")


class RecordDecision(Contract):
    """``cmd.referral.record_decision.v1``: the social worker records the 7-working-day decision
    (LSL 26 §, SHL 36 §) with its outcome. It stops the decision clock. Starting the assessment
    itself stays its own step (``cmd.referral.start_assessment.v1``). Who decided is the verified
    caller (a ``social_worker`` token on the case's team), written to the case history."""

    access: ClassVar[Access] = Access("write", role=SOCIAL_WORKER)

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    outcome: DecisionOutcome = Field(description="start_assessment | not_needed | child_protection_client.")
    decided_on: date | None = Field(
        default=None, description="Helsinki date of the decision; today when empty. Not before the receipt, not in the future."
    )
    reason: FreeText = Field(default="", description="Grounds of the decision; kept in the case history, never in an event.")


class AssessUrgency(Contract):
    """``cmd.referral.assess_urgency.v1``: the social worker records the urgency assessment of one
    referral (kiireellisen lastensuojelun tarpeen arviointi, LSL 26 §): who, when, the outcome. For a
    child-protection notification it also records whether telling the guardians that it was received
    would endanger the child; when not, the guardians are told. Who assessed it is the verified caller
    (a ``social_worker`` token on the case's team)."""

    access: ClassVar[Access] = Access("write", role=SOCIAL_WORKER)

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    referral_id: UUID = Field(description="The referral whose urgency was assessed.")
    urgent_protection_needed: bool = Field(description="The child needs urgent protection (kiireellinen lastensuojelun tarve).")
    assessed_at: datetime | None = Field(
        default=None,
        description="When it was assessed (aware datetime); now when empty. Not before the receipt, not in the future.",
    )
    guardians_endangered: bool = Field(
        default=False, description="Telling the guardians that the notification was received would endanger the child."
    )
    endangerment_reason: FreeText = Field(
        default="", description="Required when guardians_endangered: why. Kept in the case history, never in an event."
    )


class TransferCase(Contract):
    """``cmd.referral.transfer_case.v1``: hand the case over to another team, in the same or another
    municipality (asian siirto). Made by a worker, social worker or the team lead of the case's
    current team (the verified caller). The new team is told; the old team no longer reaches the case
    (every service replaces the case's team in its case-access read model). Open statutory deadlines
    keep running and now warn the new team."""

    access: ClassVar[Access] = Access("write", team_only=True)

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    team_id: Id = Field(description="The team that takes the case over (a team known to the routing).")
    municipality: ShortText | None = Field(
        default=None, description="The municipality the case moves to; the case's own municipality when empty."
    )
    reason: FreeText = Field(default="", description="Why the case is transferred; kept in the case history, never in an event.")


class CompleteAssessment(Contract):
    """``cmd.referral.complete_assessment.v1``: the service-need assessment was completed (outcome category)."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    social_worker_id: Id
    outcome: AssessmentOutcome
    completed_on: date | None = Field(default=None, description="Helsinki date; today when empty.")


class StatutoryStatisticsQuery(Contract):
    """``query.referral.statistics.v1``: the figures THL publishes, per municipality and month: the
    share of 7-working-day decisions made in time and of service-need assessments completed within 3
    months of receipt. Aggregates only (any staff role, statisticians too). As JSON rows, CSV text or an
    SVG chart labelled in fi, sv or en."""

    access: ClassVar[Access] = Access("aggregate", personal=False, case=None)

    municipality: ShortText | None = Field(default=None, description="Only this municipality.")
    from_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description="First month (YYYY-MM, Helsinki)."
    )
    to_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description="Last month (YYYY-MM, Helsinki)."
    )
    format: Literal["json", "csv", "svg"] = Field(
        default="json", description="json: rows; csv: rows and CSV text; svg: rows and a chart."
    )
    language: Language = Field(default="fi", description="The chart's language (fi, sv or en).")


class ReferralChannelStatisticsQuery(Contract):
    """``query.referral.channel_statistics.v1``: referrals per municipality, month (Helsinki) and channel,
    and how many of them were statutory or urgent (yhteydenotot kanavittain). Aggregates only (any
    staff role, statisticians too). As JSON rows or CSV text."""

    access: ClassVar[Access] = Access("aggregate", personal=False, case=None)

    municipality: ShortText | None = Field(default=None, description="Only this municipality.")
    from_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description="First month (YYYY-MM, Helsinki)."
    )
    to_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description="Last month (YYYY-MM, Helsinki)."
    )
    format: Literal["json", "csv"] = Field(default="json", description="json: rows; csv: rows and CSV text.")


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
    contacts: Personal[list[ContactPoint]] = Field(
        default_factory=list, description="Guardians and referrer of this referral, e.g. to acknowledge it to a new referrer."
    )
    guardian_keys: list[str] = Field(
        default_factory=list,
        description="Keyed hashes (HMAC-SHA256) of the guardians' henkilötunnus, when the intake named them: "
        "every service matches a signed-in guardian to the case with them. Not reversible without the key.",
    )


class ReferralUnlinked(Event):
    """A wrong link was undone: the referral now has a case of its own (``case_id``)."""

    event_type: ClassVar[str] = "referral.unlinked"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID
    previous_case_id: UUID
    recorded_by: str
    team_id: str | None = Field(
        default=None,
        description="The team the routing assigned the new case (``case_id``) to, as in the ``referral.assigned`` "
        "published with this event. Empty only in events published before it was added.",
    )
    municipality: str | None = Field(default=None, description="The new case's municipality.")


class CaseTransferred(Event):
    """The case was transferred to another team (asian siirto), possibly in another municipality. The
    old team loses access to it; the new team is told."""

    event_type: ClassVar[str] = "referral.case_transferred"
    stream: ClassVar[str] = "REFERRAL"

    team_id: str = Field(description="The team the case now belongs to.")
    previous_team_id: str | None = Field(description="The team it was taken from.")
    municipality: str = Field(description="The municipality the case now belongs to.")
    previous_municipality: str = Field(description="The municipality it belonged to before.")
    transferred_by: str = Field(description="Staff id of the verified caller who transferred it.")


class CaseErased(Event):
    """A family's case was erased at the end of its retention (tietojen hävittäminen): its data key
    is destroyed, so its sealed fields in every stream are unreadable, and every service now blanks
    or deletes the family's personal data in its own database (ids, codes, dates and counts stay, so
    statistics do not change). Ids only."""

    event_type: ClassVar[str] = "referral.case_erased"
    stream: ClassVar[str] = "REFERRAL"

    erased_by: str = Field(description="Who ordered the erasure: the verified operator (an id, e.g. ops:<login>).")
    key_destroyed: bool = Field(description="The case had a data key and it was destroyed now (false: already gone).")


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
    complete_by: date = Field(description="Last day to complete it (3 months of receipt).")
    social_worker_id: str


class DecisionRecorded(Event):
    """The 7-working-day decision was recorded (päätös palvelutarpeen arvioinnin aloittamisesta): the
    decision clock stopped. Only the outcome category travels, never the grounds."""

    event_type: ClassVar[str] = "referral.decision_recorded"
    stream: ClassVar[str] = "REFERRAL"

    outcome: DecisionOutcome = Field(description="start_assessment | not_needed | child_protection_client.")
    decided_on: date = Field(description="Helsinki date of the decision.")
    social_worker_id: str = Field(description="Staff id of the social worker who decided.")
    received_at: datetime | None = Field(default=None, description="The receipt (UTC) the 7 working days counted from.")
    due_by: date = Field(description="The last day of the 7 working days (Helsinki date).")
    within_time: bool = Field(description="Decided on or before ``due_by`` (THL's 'decisions within 7 working days').")
    complete_by: date | None = Field(
        default=None, description="Outcome start_assessment: the last day to complete the assessment (3 months of receipt)."
    )
    case_closed: bool = Field(default=False, description="Outcome not_needed closes the case at the referral stage.")


class UrgencyAssessed(Event):
    """A social worker assessed whether the child needs urgent protection (LSL 26 §). Who, when and
    the outcome; the urgency timers of the referral are cancelled."""

    event_type: ClassVar[str] = "referral.urgency_assessed"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID
    channel: Channel
    municipality: str
    assessed_by: str = Field(description="Staff id of the social worker who assessed it.")
    assessed_at: datetime = Field(description="When it was assessed (UTC).")
    urgent_protection_needed: bool = Field(description="The outcome: the child needs urgent protection.")
    received_at: datetime = Field(description="The referral's receipt (UTC).")
    due_at: datetime | None = Field(
        default=None, description="When the assessment was due (UTC), for referrals that must be assessed at once."
    )
    within_time: bool | None = Field(default=None, description="Assessed by ``due_at`` (empty when nothing was due).")
    guardians_may_be_told: bool = Field(
        default=False,
        description="A child-protection notification whose guardians are now told that it was received "
        "(false when the social worker recorded that telling them would endanger the child).",
    )
    guardian_contact_ids: list[str] = Field(
        default_factory=list, description="Contact ids of the guardians to tell (ids only; addresses are in the directory)."
    )


UrgencyEscalation = Literal["on_duty", "team_lead"]
"""on_duty: the assessment is overdue, page the on-duty social worker; team_lead: still not assessed
after the escalation interval, page the team lead."""


class UrgencyAssessmentOverdue(Event):
    """A child-protection notification or an urgent referral was not assessed for urgency in time
    (configured, default 2 hours of receipt, any hour of the week). Fired by a durable timer, twice:
    first to page the on-duty social worker, then (escalation) the team lead."""

    event_type: ClassVar[str] = "referral.urgency_assessment_overdue"
    stream: ClassVar[str] = "REFERRAL"

    referral_id: UUID
    municipality: str
    channel: Channel
    urgent: bool = Field(description="The referral was flagged urgent at intake.")
    received_at: datetime = Field(description="The referral's receipt (UTC).")
    due_at: datetime = Field(description="When the urgency assessment was due (UTC).")
    escalation: UrgencyEscalation = Field(description="Who is paged now: on_duty first, then team_lead.")
    team_id: str | None = Field(default=None, description="The case's team (whose lead is paged on escalation).")


AssessmentOutcome = Literal["services_started", "no_need_for_services", "referred_elsewhere", "child_welfare_client", "other"]


class AssessmentCompleted(Event):
    """The service-need assessment was completed. The referrer is told the outcome category only."""

    event_type: ClassVar[str] = "assessment.completed"
    stream: ClassVar[str] = "REFERRAL"

    completed_on: date
    outcome: AssessmentOutcome = Field(description="Outcome category; no details travel.")
    social_worker_id: str
    referrer_may_be_told: bool = Field(description="The law or the family's consent allows telling the referrer.")


GuardianAccessReason = Literal["non_disclosure", "custody_dispute", "care_order", "other"]


class RestrictGuardianAccess(Contract):
    """``cmd.referral.restrict_guardian_access.v1``: a social worker of the case restricts one
    guardian's access to the case's data (huoltajan tiedonsaannin rajoittaminen) for a recorded
    reason: a non-disclosure order (turvakielto), a custody dispute, a care order; with ``lifted`` the
    restriction ends. A restricted guardian is refused every request about the case
    (``forbidden``, reason ``guardian_access_restricted``) in every service. Who decided is the
    verified caller (a ``social_worker`` token on the case), kept in the case history with the note."""

    access: ClassVar[Access] = Access("write", role=SOCIAL_WORKER)

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    guardian_personal_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=11)] = Field(
        description="The guardian's henkilötunnus (as in intake.referral.v1 guardians[].personal_id); it must be a "
        "guardian of this case (not_guardian_of_case). Kept only as a keyed hash.",
    )
    reason: GuardianAccessReason = Field(description="non_disclosure | custody_dispute | care_order | other.")
    note: FreeText = Field(default="", description="Why, in words; kept in the case history, never in an event.")
    lifted: bool = Field(default=False, description="True: the guardian's restriction ends (reason: why it ends).")


class GuardianAccessRestricted(Event):
    """A guardian's access to the case's data was restricted, or the restriction lifted. Every service
    keeps it in its case-access read model; the guardian is named only by the keyed hash of their
    henkilötunnus, as in ``referral.received`` (no personal data)."""

    event_type: ClassVar[str] = "referral.guardian_access_restricted"
    stream: ClassVar[str] = "REFERRAL"

    guardian_key: str = Field(description="Keyed hash (HMAC-SHA256) of the guardian's henkilötunnus.")
    restricted: bool = Field(description="True: restricted from now on; false: the restriction was lifted.")
    reason: GuardianAccessReason
    recorded_by: str = Field(description="The social worker who decided (the verified caller's id).")


# -- replies: the ``data`` of each request's Reply -----------------------------------------------------


class OpenDeadline(Contract):
    deadline: DeadlineKind = Field(description="Which statutory step.")
    due_by: date = Field(description="Last day (Helsinki date).")


class CaseSummary(Contract):
    """A case at the referral stage, as lists show it."""

    case_id: UUID
    municipality: str
    team_id: str | None = Field(description="The team the case is assigned to (none before routing).")
    status: str = Field(description="open or closed.")
    opened_at: datetime = Field(description="When the case was opened (UTC).")
    repeat_count: int = Field(description="How many referrals the case has.")
    deadlines: list[OpenDeadline] = Field(description="Statutory deadlines not yet met.")


class AssessmentView(Contract):
    started_on: date | None = Field(description="Helsinki date the service-need assessment started.")
    complete_by: date | None = Field(description="Last day to complete it.")
    completed_on: date | None = Field(description="Helsinki date it was completed.")
    outcome: str | None = Field(description="Outcome category, once completed.")


class ConsentView(Contract):
    consent_id: UUID
    purpose: str = Field(description="convene_team, invite_referrer, share_plan or tell_referrer_outcome.")
    recipient: str | None
    given_by: str = Field(description="Contact id of the guardian (or child) who consented.")
    given_at: datetime
    withdrawn_at: datetime | None


class ReferralContactView(Contract):
    """A contact of a referral by its id: what a command names (``given_by``, a meeting's participant)."""

    contact_id: str = Field(
        description="guardian-1, guardian-2, … (details.guardians in order), or the referrer: referrer for the "
        "referral that opened the case, referrer-N for the case's N-th referral when it was linked."
    )
    role: Literal["guardian", "referrer"]
    language: str = Field(description="fi, sv, en or other.")


class ReferralView(Contract):
    referral_id: UUID
    submission_id: str
    channel: Channel
    municipality: str
    received_at: datetime
    status: str
    urgent: bool
    statutory: bool
    linked: bool = Field(description="Linked to a case opened by an earlier referral.")
    handled_at: datetime | None = Field(
        default=None, description="When the referral service handled it (UTC); ``received_at`` is the receipt."
    )
    urgency: dict[str, Any] | None = Field(
        default=None,
        description="The urgency assessment once recorded: {by, at (UTC), urgent_protection_needed, guardians_endangered, "
        "endangerment_reason}.",
    )
    details: dict[str, Any] = Field(description="The normalised submission (personal data; the fields of intake.referral.v1).")
    contacts: list[ReferralContactView] = Field(
        default_factory=list,
        description="The referral's contacts by id: guardian-N is details.guardians[N-1]; the referrer when it left a "
        "phone or e-mail. Name a guardian by this id in a command (e.g. given_by of cmd.referral.record_consent.v2).",
    )


class CaseView(CaseSummary):
    """``data`` of ``query.referral.case.v2``."""

    received_at: datetime | None = Field(default=None, description="The case's receipt (UTC): the statutory clocks start here.")
    decision: dict[str, Any] | None = Field(
        default=None, description="The 7-working-day decision once recorded: {outcome, decided_on, by, at, due_by}."
    )
    assessment: AssessmentView
    history: list[dict[str, Any]] = Field(description="What happened, oldest first: {at, what, ...detail}.")
    consents: list[ConsentView]
    referrals: list[ReferralView]


class TeamCases(Contract):
    """``data`` of ``query.referral.team_cases.v2``."""

    team_id: str
    cases: list[CaseSummary]


class DeadlineDue(Contract):
    case_id: UUID
    team_id: str | None
    deadline: DeadlineKind
    due_by: date = Field(description="Last day (Helsinki date).")
    overdue: bool = Field(description="The day has passed.")


class DeadlinesDue(Contract):
    """``data`` of ``query.referral.deadlines_due.v2``."""

    until: date = Field(description="The horizon (Helsinki date).")
    deadlines: list[DeadlineDue] = Field(description="Soonest first.")


class Unlinked(Contract):
    """``data`` of ``cmd.referral.unlink.v2`` (the reply's ``id`` is the new case)."""

    previous_case_id: UUID


class AssessmentStartedReply(Contract):
    """``data`` of ``cmd.referral.start_assessment.v2``."""

    complete_by: date = Field(description="Last day to complete the assessment (3 months of receipt).")


class DecisionRecordedReply(Contract):
    """``data`` of ``cmd.referral.record_decision.v1`` (the reply's ``id`` is the case)."""

    within_time: bool = Field(description="Decided within the 7 working days of receipt.")
    complete_by: date | None = Field(
        description="Outcome start_assessment: the last day to complete the assessment (3 months of receipt); else null."
    )


class UrgencyAssessedReply(Contract):
    """``data`` of ``cmd.referral.assess_urgency.v1`` (the reply's ``id`` is the referral)."""

    within_time: bool | None = Field(description="Assessed by the time it was due; null when nothing was due.")
    guardians_told: bool = Field(description="The guardians of a child-protection notification are told it was received.")


class CaseTransferredReply(Contract):
    """``data`` of ``cmd.referral.transfer_case.v1`` (the reply's ``id`` is the case)."""

    team_id: str = Field(description="The team the case now belongs to.")
    previous_team_id: str | None = Field(description="The team it was taken from.")
    municipality: str = Field(description="The municipality the case now belongs to.")


class StatutoryFiguresRow(Contract):
    municipality: str
    month: str = Field(description="YYYY-MM (Helsinki).")
    decisions: int = Field(description="7-working-day decisions made this month.")
    decisions_in_time: int = Field(description="Of them, made on or before the 7th working day after the receipt.")
    decisions_in_time_share: float | None = Field(description="decisions_in_time / decisions (null without decisions).")
    assessments_completed: int = Field(description="Service-need assessments completed this month.")
    assessments_in_time: int = Field(description="Of them, completed within 3 months of the receipt.")
    assessments_in_time_share: float | None = Field(description="assessments_in_time / assessments_completed.")


class StatutoryFigures(Contract):
    """``data`` of ``query.referral.statistics.v1``."""

    rows: list[StatutoryFiguresRow] = Field(description="One per municipality and month, oldest first.")
    csv: Annotated[str, MULTILINE] | None = Field(default=None, description="format csv: the rows as CSV (header row first).")
    content_type: str | None = Field(default=None, description="format svg: image/svg+xml.")
    svg: Annotated[str, MULTILINE] | None = Field(default=None, description="format svg: a bar chart of the two shares.")


class ReferralChannelRow(Contract):
    municipality: str = Field(description="Municipality of the family.")
    month: str = Field(description="YYYY-MM (Helsinki) of the receipt (``received_at``).")
    channel: Channel = Field(description="How the contacts came in.")
    referrals: int = Field(description="Referrals received (each ``referral.received``, linked ones too).")
    statutory: int = Field(description="Of them, statutory (the 7-working-day decision applies).")
    urgent: int = Field(description="Of them, with immediate danger reported at intake.")


class ReferralChannelFigures(Contract):
    """``data`` of ``query.referral.channel_statistics.v1``."""

    rows: list[ReferralChannelRow] = Field(
        description="One per municipality, month and channel that had referrals; by municipality, month, channel."
    )
    csv: Annotated[str, MULTILINE] | None = Field(
        default=None,
        description="format csv: the rows as CSV (header row first: municipality,month,channel,referrals,statutory,urgent).",
    )


class AssessmentCompletedReply(Contract):
    """``data`` of ``cmd.referral.complete_assessment.v2``."""

    referrer_may_be_told: bool = Field(description="The law or the family's consent allows telling the referrer the outcome.")


# Each request's reply data (``Reply.data``).
CaseQuery.reply_data = CaseView
TeamCasesQuery.reply_data = TeamCases
DeadlinesDueQuery.reply_data = DeadlinesDue
AccessLogQuery.reply_data = AccessLogAnswer
UnlinkReferral.reply_data = Unlinked
RecordConsent.reply_data = None
WithdrawConsent.reply_data = None
StartAssessment.reply_data = AssessmentStartedReply
CompleteAssessment.reply_data = AssessmentCompletedReply
RecordDecision.reply_data = DecisionRecordedReply
AssessUrgency.reply_data = UrgencyAssessedReply
TransferCase.reply_data = CaseTransferredReply
StatutoryStatisticsQuery.reply_data = StatutoryFigures
ReferralChannelStatisticsQuery.reply_data = ReferralChannelFigures


# (event, producer, consumers outside the four services); the services' own subscriptions are
# read from their bootstraps (infra.wiring).
EVENTS = (
    (ReferralReceived, "referral", ()),
    (ReferralRejected, "referral", ("front door",)),
    (ReferralUrgent, "referral", ()),
    (ReferralAssigned, "referral", ("staff apps",)),
    (ReferralLinked, "referral", ()),
    (ReferralUnlinked, "referral", ()),
    (CaseTransferred, "referral", ("staff apps",)),
    (DeadlineApproaching, "referral (durable timer)", ()),
    (DeadlineBreached, "referral (durable timer)", ()),
    (DecisionRecorded, "referral", ("staff apps", "statistics")),
    (UrgencyAssessed, "referral", ()),
    (UrgencyAssessmentOverdue, "referral (durable timer)", ()),
    (AssessmentStarted, "referral", ()),
    (AssessmentCompleted, "referral", ()),
    (ConsentGiven, "referral", ()),
    (ConsentWithdrawn, "referral", ()),
    (CaseErased, "referral", ()),
    (GuardianAccessRestricted, "referral", ()),
)

StartAssessment.access = CompleteAssessment.access = Access("write")
RestrictGuardianAccess.reply_data = None

# -- version 2: the actor from the verified token, the case named, a purpose on every read ----------
CaseQueryV2 = successor(CaseQuery, "query.referral.case.v2", Access("read"))
TeamCasesQueryV2 = successor(TeamCasesQuery, "query.referral.team_cases.v2", Access("read", case=None, team="team_id"))
DeadlinesDueQueryV2 = successor(
    DeadlinesDueQuery,
    "query.referral.deadlines_due.v2",
    Access("read", case=None, team="team_id"),
    required={"team_id": (Id, Field(description="The team (the caller must be on it)."))},
)
AccessLogQueryV2 = successor(
    AccessLogQuery,
    "query.referral.access_log.v2",
    Access("read", guardian=True),
    drop=("personal_id",),
    required={"case_id": (UUID, Field(description="The case whose access log is read."))},
    doc="``query.referral.access_log.v2``: who has seen one case's data, when, what and why (tietojen käyttöloki; Client Data Act 703/2023 s. 11). A guardian may read their own child's. This read is audited too.",
)
UnlinkReferralV2 = successor(UnlinkReferral, "cmd.referral.unlink.v2", Access("write"), add_case=True)
RecordConsentV2 = successor(
    RecordConsent, "cmd.referral.record_consent.v2", Access("write", guardian=True, consent=True), optional=("given_by",)
)
WithdrawConsentV2 = successor(
    WithdrawConsent, "cmd.referral.withdraw_consent.v2", Access("write", guardian=True, consent=True), optional=("withdrawn_by",)
)
CompleteAssessment.model_rebuild()  # its outcome type is defined below the class; its successor copies the field
# The assessment is a statutory act of social work (SHL 36 §): by a social worker of the case, who is
# the verified caller, not a field the caller fills in.
StartAssessmentV2 = successor(
    StartAssessment,
    "cmd.referral.start_assessment.v2",
    Access("write", role=SOCIAL_WORKER),
    drop=("social_worker_id",),
    doc="``cmd.referral.start_assessment.v2``: a social worker of the case starts the service-need assessment "
    "(palvelutarpeen arviointi, SHL 36 §). Who started it is the verified caller (a ``social_worker`` token).",
)
CompleteAssessmentV2 = successor(
    CompleteAssessment,
    "cmd.referral.complete_assessment.v2",
    Access("write", role=SOCIAL_WORKER),
    drop=("social_worker_id",),
    doc="``cmd.referral.complete_assessment.v2``: a social worker of the case records the completed service-need "
    "assessment and its outcome. Who completed it is the verified caller (a ``social_worker`` token).",
)

REQUESTS = (
    (
        "query.referral.case.v1",
        CaseQuery,
        "Retired: use query.referral.case.v2. One case with its referrals, consents, deadlines and history (audited).",
    ),
    (
        "query.referral.team_cases.v1",
        TeamCasesQuery,
        "Retired: use query.referral.team_cases.v2. Open cases of a team (audited).",
    ),
    (
        "query.referral.deadlines_due.v1",
        DeadlinesDueQuery,
        "Retired: use query.referral.deadlines_due.v2. Statutory deadlines due in the next N working days (audited).",
    ),
    (
        "query.referral.access_log.v1",
        AccessLogQuery,
        "Retired: use query.referral.access_log.v2. Who has read one person's (or one case's) data: the append-only audit log (audited).",
    ),
    (
        "cmd.referral.unlink.v1",
        UnlinkReferral,
        "Retired: use cmd.referral.unlink.v2. Undo a wrong link: the referral gets a new case (referral.unlinked).",
    ),
    (
        "cmd.referral.record_consent.v1",
        RecordConsent,
        "Retired: use cmd.referral.record_consent.v2. Record consent per purpose and recipient (consent.given).",
    ),
    (
        "cmd.referral.withdraw_consent.v1",
        WithdrawConsent,
        "Retired: use cmd.referral.withdraw_consent.v2. Withdraw a consent (consent.withdrawn).",
    ),
    (
        "cmd.referral.record_decision.v1",
        RecordDecision,
        "Record the 7-working-day decision: start_assessment, not_needed or child_protection_client "
        "(referral.decision_recorded); by a social worker of the case's team.",
    ),
    (
        "cmd.referral.assess_urgency.v1",
        AssessUrgency,
        "Record the urgency assessment of a referral: who, when, outcome; guardians told unless it endangers the child "
        "(referral.urgency_assessed); by a social worker of the case's team.",
    ),
    (
        "query.referral.statistics.v1",
        StatutoryStatisticsQuery,
        "THL's statutory figures per municipality and month (decisions within 7 working days, assessments within "
        "3 months) as JSON, CSV or an SVG chart (fi/sv/en); aggregates only.",
    ),
    (
        "query.referral.channel_statistics.v1",
        ReferralChannelStatisticsQuery,
        "Referrals per municipality, month and channel, with the statutory and urgent ones, as JSON or CSV; aggregates only.",
    ),
    (
        "cmd.referral.transfer_case.v1",
        TransferCase,
        "Transfer the case to another team or municipality (referral.case_transferred); by the case's own team. "
        "The old team loses access; the new team is told.",
    ),
    (
        "cmd.referral.start_assessment.v1",
        StartAssessment,
        "Retired: use cmd.referral.start_assessment.v2. Record the start of the service-need assessment (assessment.started).",
    ),
    (
        "cmd.referral.complete_assessment.v1",
        CompleteAssessment,
        "Retired: use cmd.referral.complete_assessment.v2. Record the completed assessment and its outcome "
        "(assessment.completed).",
    ),
    (
        "cmd.referral.start_assessment.v2",
        StartAssessmentV2,
        "Record the start of the service-need assessment (assessment.started); by a social worker of the case, "
        "who is the verified caller.",
    ),
    (
        "cmd.referral.restrict_guardian_access.v1",
        RestrictGuardianAccess,
        "Restrict one guardian's access to the case's data for a recorded reason, or lift it "
        "(referral.guardian_access_restricted); by a social worker of the case.",
    ),
    (
        "cmd.referral.complete_assessment.v2",
        CompleteAssessmentV2,
        "Record the completed assessment and its outcome (assessment.completed); by a social worker of the case, "
        "who is the verified caller.",
    ),
    ("query.referral.case.v2", CaseQueryV2, "One case with its referrals, consents, deadlines and history (audited)."),
    ("query.referral.team_cases.v2", TeamCasesQueryV2, "Open cases of a team the caller is on (audited)."),
    (
        "query.referral.deadlines_due.v2",
        DeadlinesDueQueryV2,
        "Statutory deadlines of a team due in the next N working days (audited).",
    ),
    (
        "query.referral.access_log.v2",
        AccessLogQueryV2,
        "Who has read one case's data: the append-only audit log (audited; guardians too).",
    ),
    ("cmd.referral.unlink.v2", UnlinkReferralV2, "Undo a wrong link: the referral gets a new case (referral.unlinked)."),
    (
        "cmd.referral.record_consent.v2",
        RecordConsentV2,
        "Record consent per purpose and recipient (consent.given); by a worker of the case or the guardian.",
    ),
    (
        "cmd.referral.withdraw_consent.v2",
        WithdrawConsentV2,
        "Withdraw a consent (consent.withdrawn); by a worker of the case or the guardian.",
    ),
)
