"""Errors a request can be refused with: one registry of machine codes and their fi/sv/en texts.
Plain Python: safe to import from a domain.

The texts are written in English here (``N_`` marks them for ``pybabel extract``, ``make messages``)
and translated in the ``errors`` catalogue, ``shared/locale/<fi,sv,en>/LC_MESSAGES/errors.po``,
with the refusals' more specific texts that services give (``DomainError(..., en=N_(...))``).

Every code a command or query can return is registered here, with its texts; ``docs/errors.md`` is
generated from this registry and from the code that raises them (``python -m shared.contracts.docs
write``), and a test fails when a code is raised without being registered or the document is stale.
Codes are the contract; a refusal may carry a more specific text for the same code than the one here.
Texts are written by us and never contain input values, so they are safe to log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.catalogue import N_, Catalogue

CATALOGUE = Catalogue(Path(__file__).with_name("locale"), "errors")

Kind = Literal["validation", "runtime", "identity", "domain", "intake"]
KINDS: dict[str, str] = {
    "validation": "The request does not match its contract (field_errors of the JSON schema); any request.",
    "runtime": "Given by the runtime to any request.",
    "identity": "Who is asking and what they may do (the access token and the policy); any request.",
    "domain": "The command or query was refused by a rule of the service.",
    "intake": "Reasons of a rejected front-door submission (referral.rejected.v1 reasons), not a reply.",
}


@dataclass(frozen=True)
class ErrorCode:
    code: str
    kind: Kind
    text: str  # the English source text; fi and sv from the catalogue

    @property
    def fi(self) -> str:
        return CATALOGUE.gettext("fi", self.text)

    @property
    def sv(self) -> str:
        return CATALOGUE.gettext("sv", self.text)

    @property
    def en(self) -> str:
        return CATALOGUE.gettext("en", self.text)

    def message(self) -> dict[str, str]:
        return CATALOGUE.by_language(self.text)


ERRORS: dict[str, ErrorCode] = {
    # -- validation: pydantic error types the contracts can produce ------------------------------
    "json_invalid": ErrorCode("json_invalid", "validation", N_("The message is not valid JSON.")),
    "missing": ErrorCode("missing", "validation", N_("Required field is missing.")),
    "extra_forbidden": ErrorCode("extra_forbidden", "validation", N_("Unknown field.")),
    "model_type": ErrorCode("model_type", "validation", N_("An object is expected.")),
    "model_attributes_type": ErrorCode("model_attributes_type", "validation", N_("An object is expected.")),
    "dict_type": ErrorCode("dict_type", "validation", N_("An object is expected.")),
    "list_type": ErrorCode("list_type", "validation", N_("A list is expected.")),
    "too_short": ErrorCode("too_short", "validation", N_("The list has too few items.")),
    "too_long": ErrorCode("too_long", "validation", N_("The list has too many items.")),
    "string_type": ErrorCode("string_type", "validation", N_("A string is expected.")),
    "string_too_short": ErrorCode("string_too_short", "validation", N_("The text is too short.")),
    "string_too_long": ErrorCode("string_too_long", "validation", N_("The text is too long.")),
    "string_pattern_mismatch": ErrorCode("string_pattern_mismatch", "validation", N_("The text has the wrong format.")),
    "string_unicode": ErrorCode("string_unicode", "validation", N_("The text is not valid Unicode.")),
    "literal_error": ErrorCode("literal_error", "validation", N_("The value is not one of the allowed values.")),
    "enum": ErrorCode("enum", "validation", N_("The value is not one of the allowed values.")),
    "int_type": ErrorCode("int_type", "validation", N_("An integer is expected.")),
    "int_parsing": ErrorCode("int_parsing", "validation", N_("An integer is expected.")),
    "int_from_float": ErrorCode("int_from_float", "validation", N_("An integer is expected.")),
    # a number beyond 64 bits (e.g. 1e19): pydantic cannot read it as an integer at all
    "int_parsing_size": ErrorCode("int_parsing_size", "validation", N_("The value is too large.")),
    "float_type": ErrorCode("float_type", "validation", N_("A number is expected.")),
    "float_parsing": ErrorCode("float_parsing", "validation", N_("A number is expected.")),
    # a number JSON can write but no float holds (1e999 reads as infinity)
    "finite_number": ErrorCode("finite_number", "validation", N_("A number is expected.")),
    "bool_type": ErrorCode("bool_type", "validation", N_("A boolean is expected.")),
    "bool_parsing": ErrorCode("bool_parsing", "validation", N_("A boolean is expected.")),
    "greater_than_equal": ErrorCode("greater_than_equal", "validation", N_("The value is too small.")),
    "less_than_equal": ErrorCode("less_than_equal", "validation", N_("The value is too large.")),
    "uuid_type": ErrorCode("uuid_type", "validation", N_("A UUID is expected.")),
    "uuid_parsing": ErrorCode("uuid_parsing", "validation", N_("A UUID is expected.")),
    "date_type": ErrorCode("date_type", "validation", N_("A date is expected (YYYY-MM-DD).")),
    "date_parsing": ErrorCode("date_parsing", "validation", N_("A date is expected (YYYY-MM-DD).")),
    "date_from_datetime_parsing": ErrorCode("date_from_datetime_parsing", "validation", N_("A date is expected (YYYY-MM-DD).")),
    "date_from_datetime_inexact": ErrorCode(
        "date_from_datetime_inexact", "validation", N_("A date without a time of day is expected.")
    ),
    "datetime_type": ErrorCode("datetime_type", "validation", N_("A timestamp is expected (ISO 8601).")),
    "datetime_parsing": ErrorCode("datetime_parsing", "validation", N_("A timestamp is expected (ISO 8601).")),
    "datetime_from_date_parsing": ErrorCode(
        "datetime_from_date_parsing", "validation", N_("A timestamp is expected (ISO 8601).")
    ),
    "control_character": ErrorCode(
        "control_character",
        "validation",
        N_("The field holds a control character (e.g. NUL); free text allows newline and tab only."),
    ),
    "value_error": ErrorCode("value_error", "validation", N_("Invalid value.")),
    "invalid_value": ErrorCode("invalid_value", "validation", N_("Invalid value.")),
    # -- the runtime's own ----------------------------------------------------------------------
    "internal_error": ErrorCode("internal_error", "runtime", N_("Internal error, please retry.")),
    "temporarily_unavailable": ErrorCode(
        "temporarily_unavailable",
        "runtime",
        N_("A service this request needs did not answer; nothing was changed. Retry in a moment."),
    ),
    "not_found": ErrorCode("not_found", "runtime", N_("Unknown id.")),
    "command_id_reused": ErrorCode(
        "command_id_reused",
        "runtime",
        N_("This command id was used for another command; nothing was changed. Use a new id for a new command."),
    ),
    # -- identity and permissions: every request (shared/service.py, shared/policy.py) -----------
    "unauthenticated": ErrorCode(
        "unauthenticated",
        "identity",
        N_("Sign in again: the request carried no valid access token (Authorization: Bearer <token>)."),
    ),
    "forbidden": ErrorCode("forbidden", "identity", N_("You have no access to this with your role and relation to the case.")),
    "purpose_required": ErrorCode(
        "purpose_required", "identity", N_("State why you read this data: purpose, one of the documented values.")
    ),
    "version_retired": ErrorCode(
        "version_retired", "identity", N_("This version of the request is retired; send the successor subject (data.successor).")
    ),
    # -- refusals by the services' rules --------------------------------------------------------
    "already_held": ErrorCode("already_held", "domain", N_("The meeting is already recorded held.")),
    "already_withdrawn": ErrorCode("already_withdrawn", "domain", N_("The consent is already withdrawn.")),
    "assessment_already_completed": ErrorCode(
        "assessment_already_completed", "domain", N_("The assessment is already completed.")
    ),
    "assessment_already_started": ErrorCode("assessment_already_started", "domain", N_("The assessment has already started.")),
    "started_before_receipt": ErrorCode(
        "started_before_receipt", "domain", N_("The assessment cannot start before the receipt.")
    ),
    "already_on_team": ErrorCode("already_on_team", "domain", N_("The case already belongs to this team.")),
    "handover_completed": ErrorCode("handover_completed", "domain", N_("The handover is already completed.")),
    "service_closed": ErrorCode("service_closed", "domain", N_("The service has already started or was declined.")),
    "service_step_back": ErrorCode("service_step_back", "domain", N_("A service only moves forward: sent, accepted, started.")),
    "recorded_in_future": ErrorCode("recorded_in_future", "domain", N_("The date is in the future.")),
    "unknown_successor": ErrorCode(
        "unknown_successor",
        "domain",
        N_("The successor is not an active professional, or the professional is not being deactivated."),
    ),
    "unknown_team": ErrorCode("unknown_team", "domain", N_("The team is not known.")),
    "decision_already_recorded": ErrorCode("decision_already_recorded", "domain", N_("The decision is already recorded.")),
    "no_decision_pending": ErrorCode(
        "no_decision_pending", "domain", N_("No statutory referral awaits a decision in this case.")
    ),
    "decided_before_receipt": ErrorCode("decided_before_receipt", "domain", N_("The decision cannot precede the receipt.")),
    "decided_in_future": ErrorCode("decided_in_future", "domain", N_("The decision date is in the future.")),
    "not_a_guardian_of_case": ErrorCode(
        "not_a_guardian_of_case", "domain", N_("The person named is not a guardian of this case.")
    ),
    "started_in_future": ErrorCode("started_in_future", "domain", N_("The assessment's start date is in the future.")),
    "completed_in_future": ErrorCode("completed_in_future", "domain", N_("The assessment's completion date is in the future.")),
    "urgency_already_assessed": ErrorCode(
        "urgency_already_assessed", "domain", N_("The urgency of this referral is already assessed.")
    ),
    "assessed_in_future": ErrorCode("assessed_in_future", "domain", N_("The assessment time is in the future.")),
    "assessed_before_receipt": ErrorCode("assessed_before_receipt", "domain", N_("The assessment cannot precede the receipt.")),
    "reason_required": ErrorCode(
        "reason_required", "domain", N_("Give the reason why telling the guardians would endanger the child.")
    ),
    "assessment_not_started": ErrorCode("assessment_not_started", "domain", N_("The assessment has not been started.")),
    "cancelled": ErrorCode("cancelled", "domain", N_("The meeting was cancelled.")),
    "case_closed": ErrorCode("case_closed", "domain", N_("The case is closed.")),
    "completed_before_start": ErrorCode("completed_before_start", "domain", N_("Completion cannot precede the start.")),
    "consent_missing": ErrorCode("consent_missing", "domain", N_("The family has not consented to convening the team.")),
    "double_booked": ErrorCode("double_booked", "domain", N_("Already booked at that time.")),
    "duplicate": ErrorCode("duplicate", "domain", N_("Named twice.")),
    "duplicate_area": ErrorCode("duplicate_area", "domain", N_("A wellbeing-star area is scored twice.")),
    "duplicate_participant": ErrorCode("duplicate_participant", "domain", N_("A participant is listed twice.")),
    "ends_before_start": ErrorCode("ends_before_start", "domain", N_("The meeting must end after it starts.")),
    "family_missing": ErrorCode("family_missing", "domain", N_("The family must be invited.")),
    "in_past": ErrorCode("in_past", "domain", N_("The time must be in the future.")),
    "invalid_outcome": ErrorCode("invalid_outcome", "domain", N_("Unknown outcome.")),
    "invalid_personal_id": ErrorCode("invalid_personal_id", "domain", N_("Not a valid henkilötunnus.")),
    "meeting_of_other_case": ErrorCode("meeting_of_other_case", "domain", N_("That meeting belongs to another case.")),
    "naive_datetime": ErrorCode("naive_datetime", "domain", N_("Timestamp needs a time zone.")),
    "no_feasible_slot": ErrorCode("no_feasible_slot", "domain", N_("No common time within the search horizon.")),
    "no_room": ErrorCode("no_room", "domain", N_("No room in the municipality seats everyone.")),
    "no_slot_before_deadline": ErrorCode("no_slot_before_deadline", "domain", N_("No common time before the case's deadline.")),
    "not_linked": ErrorCode("not_linked", "domain", N_("The referral opened its case; it is not linked.")),
    "not_open": ErrorCode("not_open", "domain", N_("The meeting is already held or cancelled.")),
    "not_responsible_worker": ErrorCode(
        "not_responsible_worker", "domain", N_("Only the plan's responsible worker records the follow-up.")
    ),
    "not_held": ErrorCode("not_held", "domain", N_("Feedback can be given only on a meeting that was held.")),
    "not_started": ErrorCode("not_started", "domain", N_("The meeting has not started yet.")),
    "plan_closed": ErrorCode("plan_closed", "domain", N_("The plan is closed.")),
    "plan_incomplete": ErrorCode("plan_incomplete", "domain", N_("A part of the plan frame is missing.")),
    "professional_missing": ErrorCode("professional_missing", "domain", N_("At least one professional is needed.")),
    "proposal_closed": ErrorCode("proposal_closed", "domain", N_("The proposal is no longer open.")),
    "recipient_required": ErrorCode("recipient_required", "domain", N_("Name the party the plan may be shared with.")),
    "referrer_consent_missing": ErrorCode(
        "referrer_consent_missing", "domain", N_("The family has not consented to inviting the referrer.")
    ),
    "responsible_not_professional": ErrorCode(
        "responsible_not_professional", "domain", N_("The responsible worker must be one of the professionals present.")
    ),
    "responsible_not_public": ErrorCode(
        "responsible_not_public", "domain", N_("The responsible worker must work in a public service.")
    ),
    "room_too_small": ErrorCode("room_too_small", "domain", N_("The room does not seat everyone.")),
    "too_far": ErrorCode("too_far", "domain", N_("The next contact must be within a year.")),
    "too_many_responsible": ErrorCode("too_many_responsible", "domain", N_("One responsible worker or a pair.")),
    "unknown_case": ErrorCode("unknown_case", "domain", N_("No open case with this id.")),
    "unknown_meeting": ErrorCode("unknown_meeting", "domain", N_("No such meeting.")),
    "key_store_unavailable": ErrorCode(
        "key_store_unavailable", "domain", N_("The case key store did not answer; nothing was erased. Retry the erasure.")
    ),
    "unknown_participant": ErrorCode(
        "unknown_participant",
        "domain",
        N_("Someone named is not in the roster, among the case's contacts or invited to the meeting."),
    ),
    "unknown_role": ErrorCode("unknown_role", "domain", N_("Nobody in the roster has a role asked for.")),
    "unknown_municipality": ErrorCode(
        "unknown_municipality", "domain", N_("The roster has no professionals in this municipality.")
    ),
    "unknown_room": ErrorCode("unknown_room", "domain", N_("No such room in the roster.")),
    "valid_until_in_past": ErrorCode("valid_until_in_past", "domain", N_("The end date is in the past.")),
    "version_conflict": ErrorCode("version_conflict", "domain", N_("The plan was changed meanwhile; reload it.")),
    # -- intake rejection reasons ---------------------------------------------------------------
    "invalid_length": ErrorCode("invalid_length", "intake", N_("Personal identity code has the wrong length.")),
    "invalid_century_sign": ErrorCode("invalid_century_sign", "intake", N_("Invalid century sign in personal identity code.")),
    "invalid_format": ErrorCode("invalid_format", "intake", N_("Personal identity code has the wrong format.")),
    "invalid_date": ErrorCode("invalid_date", "intake", N_("Personal identity code has an impossible date.")),
    "invalid_individual_number": ErrorCode(
        "invalid_individual_number", "intake", N_("Invalid individual number in personal identity code.")
    ),
    "submitted_at_in_future": ErrorCode(
        "submitted_at_in_future", "intake", N_("submitted_at is in the future (more than the allowed clock skew ahead).")
    ),
    "submitted_at_too_old": ErrorCode("submitted_at_too_old", "intake", N_("submitted_at is older than the intake accepts.")),
    "submission_id_reused": ErrorCode(
        "submission_id_reused",
        "intake",
        N_("This submission id was already used for a different submission; give each submission its own id."),
    ),
    "invalid_checksum": ErrorCode("invalid_checksum", "intake", N_("Personal identity code checksum does not match.")),
    "identity_missing": ErrorCode("identity_missing", "intake", N_("Give the child's personal identity code or date of birth.")),
    "birth_date_mismatch": ErrorCode(
        "birth_date_mismatch", "intake", N_("Date of birth does not match the personal identity code.")
    ),
    "birth_date_in_future": ErrorCode("birth_date_in_future", "intake", N_("Date of birth is in the future.")),
    "not_a_child": ErrorCode("not_a_child", "intake", N_("The person is not a child (under 18).")),
    "duplicate_child": ErrorCode("duplicate_child", "intake", N_("The same child is given twice.")),
    "invalid_phone": ErrorCode("invalid_phone", "intake", N_("Invalid phone number.")),
    "invalid_email": ErrorCode("invalid_email", "intake", N_("Invalid e-mail address.")),
    "contact_missing": ErrorCode("contact_missing", "intake", N_("A guardian needs a phone number or an e-mail address.")),
    "guardian_required": ErrorCode("guardian_required", "intake", N_("At least one guardian is required for this channel.")),
    "referrer_required": ErrorCode("referrer_required", "intake", N_("The referrer is required for this channel.")),
    "referrer_must_be_professional": ErrorCode(
        "referrer_must_be_professional", "intake", N_("The referrer must be a professional for this channel.")
    ),
    "referrer_not_allowed": ErrorCode("referrer_not_allowed", "intake", N_("The family's own contact form has no referrer.")),
    "concern_required": ErrorCode("concern_required", "intake", N_("Describe the concern.")),
    "channel_details_required": ErrorCode("channel_details_required", "intake", N_("The channel's details are required.")),
    "channel_details_mismatch": ErrorCode("channel_details_mismatch", "intake", N_("These details belong to another channel.")),
    "guardian_not_present": ErrorCode("guardian_not_present", "intake", N_("A joint contact is made together with a guardian.")),
    "language_unspecified": ErrorCode(
        "language_unspecified", "intake", N_("Give the family's language or the need for an interpreter.")
    ),
    "unprocessable": ErrorCode("unprocessable", "intake", N_("The submission could not be processed.")),
}

GENERIC = ERRORS["invalid_value"]
"""The text of a code that is not registered (a test keeps that from happening)."""


def message(code: str) -> dict[str, str]:
    """The registered fi/sv/en text of a code."""
    return ERRORS.get(code, GENERIC).message()


class DomainError(Exception):
    """A command was refused for a reason the user can fix.

    ``field`` and ``code`` are machine-readable; ``message`` is by language (fi, sv, en): the
    registry's text of the code, unless the caller gives a more specific one (``en=N_("...")``,
    translated in the errors catalogue).
    """

    def __init__(self, code: str, field: str = "$", en: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        # A more specific text is its English source (marked N_ where it is written), translated by the catalogue.
        self.message = CATALOGUE.by_language(en) if en else message(code)

    def __str__(self) -> str:  # never carries input values
        return f"{self.code} at {self.field}"


class NotFound(DomainError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", what)
