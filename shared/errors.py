"""Errors a request can be refused with: one registry of machine codes and their fi/sv/en texts.
Plain Python: safe to import from a domain.

Every code a command or query can return is registered here, with its texts; ``docs/errors.md`` is
generated from this registry and from the code that raises them (``python -m shared.contracts.docs
write``), and a test fails when a code is raised without being registered or the document is stale.
Codes are the contract; a refusal may carry a more specific text for the same code than the one here.
Texts are written by us and never contain input values, so they are safe to log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    fi: str
    sv: str
    en: str

    def message(self) -> dict[str, str]:
        return {"fi": self.fi, "sv": self.sv, "en": self.en}


ERRORS: dict[str, ErrorCode] = {
    # -- validation: pydantic error types the contracts can produce ------------------------------
    "json_invalid": ErrorCode(
        "json_invalid",
        "validation",
        fi="Viesti ei ole kelvollista JSONia.",
        sv="Meddelandet är inte giltig JSON.",
        en="The message is not valid JSON.",
    ),
    "missing": ErrorCode(
        "missing",
        "validation",
        fi="Pakollinen tieto puuttuu.",
        sv="Obligatorisk uppgift saknas.",
        en="Required field is missing.",
    ),
    "extra_forbidden": ErrorCode("extra_forbidden", "validation", fi="Tuntematon kenttä.", sv="Okänt fält.", en="Unknown field."),
    "model_type": ErrorCode(
        "model_type", "validation", fi="Odotettiin objektia.", sv="Ett objekt förväntades.", en="An object is expected."
    ),
    "model_attributes_type": ErrorCode(
        "model_attributes_type",
        "validation",
        fi="Odotettiin objektia.",
        sv="Ett objekt förväntades.",
        en="An object is expected.",
    ),
    "dict_type": ErrorCode(
        "dict_type", "validation", fi="Odotettiin objektia.", sv="Ett objekt förväntades.", en="An object is expected."
    ),
    "list_type": ErrorCode(
        "list_type", "validation", fi="Odotettiin listaa.", sv="En lista förväntades.", en="A list is expected."
    ),
    "too_short": ErrorCode(
        "too_short",
        "validation",
        fi="Listassa on liian vähän alkioita.",
        sv="Listan har för få element.",
        en="The list has too few items.",
    ),
    "too_long": ErrorCode(
        "too_long",
        "validation",
        fi="Listassa on liian monta alkiota.",
        sv="Listan har för många element.",
        en="The list has too many items.",
    ),
    "string_type": ErrorCode(
        "string_type", "validation", fi="Odotettiin tekstiä.", sv="En text förväntades.", en="A string is expected."
    ),
    "string_too_short": ErrorCode(
        "string_too_short", "validation", fi="Teksti on liian lyhyt.", sv="Texten är för kort.", en="The text is too short."
    ),
    "string_too_long": ErrorCode(
        "string_too_long", "validation", fi="Teksti on liian pitkä.", sv="Texten är för lång.", en="The text is too long."
    ),
    "string_pattern_mismatch": ErrorCode(
        "string_pattern_mismatch",
        "validation",
        fi="Teksti on väärää muotoa.",
        sv="Texten har fel format.",
        en="The text has the wrong format.",
    ),
    "string_unicode": ErrorCode(
        "string_unicode",
        "validation",
        fi="Teksti ei ole kelvollista Unicodea.",
        sv="Texten är inte giltig Unicode.",
        en="The text is not valid Unicode.",
    ),
    "literal_error": ErrorCode(
        "literal_error",
        "validation",
        fi="Arvo ei ole sallittujen joukossa.",
        sv="Värdet är inte ett av de tillåtna.",
        en="The value is not one of the allowed values.",
    ),
    "enum": ErrorCode(
        "enum",
        "validation",
        fi="Arvo ei ole sallittujen joukossa.",
        sv="Värdet är inte ett av de tillåtna.",
        en="The value is not one of the allowed values.",
    ),
    "int_type": ErrorCode(
        "int_type", "validation", fi="Odotettiin kokonaislukua.", sv="Ett heltal förväntades.", en="An integer is expected."
    ),
    "int_parsing": ErrorCode(
        "int_parsing", "validation", fi="Odotettiin kokonaislukua.", sv="Ett heltal förväntades.", en="An integer is expected."
    ),
    "int_from_float": ErrorCode(
        "int_from_float", "validation", fi="Odotettiin kokonaislukua.", sv="Ett heltal förväntades.", en="An integer is expected."
    ),
    "float_type": ErrorCode(
        "float_type", "validation", fi="Odotettiin lukua.", sv="Ett tal förväntades.", en="A number is expected."
    ),
    "float_parsing": ErrorCode(
        "float_parsing", "validation", fi="Odotettiin lukua.", sv="Ett tal förväntades.", en="A number is expected."
    ),
    "bool_type": ErrorCode(
        "bool_type", "validation", fi="Odotettiin totuusarvoa.", sv="Ett sanningsvärde förväntades.", en="A boolean is expected."
    ),
    "bool_parsing": ErrorCode(
        "bool_parsing",
        "validation",
        fi="Odotettiin totuusarvoa.",
        sv="Ett sanningsvärde förväntades.",
        en="A boolean is expected.",
    ),
    "greater_than_equal": ErrorCode(
        "greater_than_equal", "validation", fi="Arvo on liian pieni.", sv="Värdet är för litet.", en="The value is too small."
    ),
    "less_than_equal": ErrorCode(
        "less_than_equal", "validation", fi="Arvo on liian suuri.", sv="Värdet är för stort.", en="The value is too large."
    ),
    "uuid_type": ErrorCode(
        "uuid_type", "validation", fi="Odotettiin UUID-tunnistetta.", sv="Ett UUID förväntades.", en="A UUID is expected."
    ),
    "uuid_parsing": ErrorCode(
        "uuid_parsing", "validation", fi="Odotettiin UUID-tunnistetta.", sv="Ett UUID förväntades.", en="A UUID is expected."
    ),
    "date_type": ErrorCode(
        "date_type",
        "validation",
        fi="Odotettiin päivämäärää (VVVV-KK-PP).",
        sv="Ett datum förväntades (ÅÅÅÅ-MM-DD).",
        en="A date is expected (YYYY-MM-DD).",
    ),
    "date_parsing": ErrorCode(
        "date_parsing",
        "validation",
        fi="Odotettiin päivämäärää (VVVV-KK-PP).",
        sv="Ett datum förväntades (ÅÅÅÅ-MM-DD).",
        en="A date is expected (YYYY-MM-DD).",
    ),
    "date_from_datetime_parsing": ErrorCode(
        "date_from_datetime_parsing",
        "validation",
        fi="Odotettiin päivämäärää (VVVV-KK-PP).",
        sv="Ett datum förväntades (ÅÅÅÅ-MM-DD).",
        en="A date is expected (YYYY-MM-DD).",
    ),
    "date_from_datetime_inexact": ErrorCode(
        "date_from_datetime_inexact",
        "validation",
        fi="Odotettiin päivämäärää ilman kellonaikaa.",
        sv="Ett datum utan klockslag förväntades.",
        en="A date without a time of day is expected.",
    ),
    "datetime_type": ErrorCode(
        "datetime_type",
        "validation",
        fi="Odotettiin aikaleimaa (ISO 8601).",
        sv="En tidsstämpel förväntades (ISO 8601).",
        en="A timestamp is expected (ISO 8601).",
    ),
    "datetime_parsing": ErrorCode(
        "datetime_parsing",
        "validation",
        fi="Odotettiin aikaleimaa (ISO 8601).",
        sv="En tidsstämpel förväntades (ISO 8601).",
        en="A timestamp is expected (ISO 8601).",
    ),
    "datetime_from_date_parsing": ErrorCode(
        "datetime_from_date_parsing",
        "validation",
        fi="Odotettiin aikaleimaa (ISO 8601).",
        sv="En tidsstämpel förväntades (ISO 8601).",
        en="A timestamp is expected (ISO 8601).",
    ),
    "control_character": ErrorCode(
        "control_character",
        "validation",
        fi="Kentässä on ohjausmerkki (esim. NUL); vapaassa tekstissä rivinvaihto ja sarkain ovat sallittuja.",
        sv="Fältet innehåller ett styrtecken (t.ex. NUL); i fritext är radbyte och tabb tillåtna.",
        en="The field holds a control character (e.g. NUL); free text allows newline and tab only.",
    ),
    "value_error": ErrorCode("value_error", "validation", fi="Virheellinen arvo.", sv="Ogiltigt värde.", en="Invalid value."),
    "invalid_value": ErrorCode("invalid_value", "validation", fi="Virheellinen arvo.", sv="Ogiltigt värde.", en="Invalid value."),
    # -- the runtime's own ----------------------------------------------------------------------
    "internal_error": ErrorCode(
        "internal_error",
        "runtime",
        fi="Sisäinen virhe, yritä uudelleen.",
        sv="Internt fel, försök igen.",
        en="Internal error, please retry.",
    ),
    "not_found": ErrorCode("not_found", "runtime", fi="Tuntematon tunniste.", sv="Okänd identifierare.", en="Unknown id."),
    # -- identity and permissions: every request (shared/service.py, shared/policy.py) -----------
    "unauthenticated": ErrorCode(
        "unauthenticated",
        "identity",
        fi="Kirjaudu uudelleen: pyynnössä ei ollut voimassa olevaa tunnistetta.",
        sv="Logga in igen: begäran saknade en giltig åtkomsttoken.",
        en="Sign in again: the request carried no valid access token (Authorization: Bearer <token>).",
    ),
    "forbidden": ErrorCode(
        "forbidden",
        "identity",
        fi="Tähän ei ole käyttöoikeutta roolin ja asiakkuuteen liittyvän tehtävän perusteella.",
        sv="Rollen och relationen till klientskapet ger ingen åtkomst till detta.",
        en="You have no access to this with your role and relation to the case.",
    ),
    "purpose_required": ErrorCode(
        "purpose_required",
        "identity",
        fi="Kerro tietojen käyttötarkoitus (purpose), jokin dokumentoiduista arvoista.",
        sv="Ange varför uppgifterna läses (purpose), ett av de dokumenterade värdena.",
        en="State why you read this data: purpose, one of the documented values.",
    ),
    "version_retired": ErrorCode(
        "version_retired",
        "identity",
        fi="Pyynnön tämä versio on poistunut käytöstä; käytä uutta versiota (data.successor).",
        sv="Den här versionen av begäran är avvecklad; använd efterföljaren (data.successor).",
        en="This version of the request is retired; send the successor subject (data.successor).",
    ),
    # -- refusals by the services' rules --------------------------------------------------------
    "already_held": ErrorCode(
        "already_held",
        "domain",
        fi="Tapaaminen on jo kirjattu pidetyksi.",
        sv="Mötet är redan registrerat.",
        en="The meeting is already recorded held.",
    ),
    "already_withdrawn": ErrorCode(
        "already_withdrawn",
        "domain",
        fi="Suostumus on jo peruttu.",
        sv="Samtycket har redan återkallats.",
        en="The consent is already withdrawn.",
    ),
    "assessment_already_completed": ErrorCode(
        "assessment_already_completed",
        "domain",
        fi="Arviointi on jo valmis.",
        sv="Bedömningen är redan klar.",
        en="The assessment is already completed.",
    ),
    "assessment_already_started": ErrorCode(
        "assessment_already_started",
        "domain",
        fi="Arviointi on jo aloitettu.",
        sv="Bedömningen har redan inletts.",
        en="The assessment has already started.",
    ),
    "started_before_receipt": ErrorCode(
        "started_before_receipt",
        "domain",
        fi="Arviointi ei voi alkaa ennen vastaanottoa.",
        sv="Bedömningen kan inte inledas före mottagandet.",
        en="The assessment cannot start before the receipt.",
    ),
    "already_on_team": ErrorCode(
        "already_on_team",
        "domain",
        fi="Asia on jo tällä tiimillä.",
        sv="Ärendet hör redan till detta team.",
        en="The case already belongs to this team.",
    ),
    "handover_completed": ErrorCode(
        "handover_completed",
        "domain",
        fi="Vastuun siirto on jo tehty.",
        sv="Överlämningen är redan gjord.",
        en="The handover is already completed.",
    ),
    "service_closed": ErrorCode(
        "service_closed",
        "domain",
        fi="Palvelu on jo alkanut tai siitä on kieltäydytty.",
        sv="Tjänsten har redan börjat eller avböjts.",
        en="The service has already started or was declined.",
    ),
    "service_step_back": ErrorCode(
        "service_step_back",
        "domain",
        fi="Palvelun tila voi edetä vain eteenpäin: lähetetty, hyväksytty, alkanut.",
        sv="Tjänstens status kan bara gå framåt: skickad, godkänd, påbörjad.",
        en="A service only moves forward: sent, accepted, started.",
    ),
    "recorded_in_future": ErrorCode(
        "recorded_in_future",
        "domain",
        fi="Päivä on tulevaisuudessa.",
        sv="Datumet ligger i framtiden.",
        en="The date is in the future.",
    ),
    "unknown_successor": ErrorCode(
        "unknown_successor",
        "domain",
        fi="Seuraajaksi nimetty ei ole aktiivinen työntekijä, tai työntekijää ei olla poistamassa käytöstä.",
        sv="Efterträdaren är inte en aktiv medarbetare, eller medarbetaren avaktiveras inte.",
        en="The successor is not an active professional, or the professional is not being deactivated.",
    ),
    "unknown_team": ErrorCode(
        "unknown_team",
        "domain",
        fi="Tiimiä ei tunneta.",
        sv="Teamet är okänt.",
        en="The team is not known.",
    ),
    "decision_already_recorded": ErrorCode(
        "decision_already_recorded",
        "domain",
        fi="Päätös on jo kirjattu.",
        sv="Beslutet är redan registrerat.",
        en="The decision is already recorded.",
    ),
    "no_decision_pending": ErrorCode(
        "no_decision_pending",
        "domain",
        fi="Asiassa ei ole päätöstä odottavaa lakisääteistä yhteydenottoa.",
        sv="Inget lagstadgat ärende väntar på beslut.",
        en="No statutory referral awaits a decision in this case.",
    ),
    "decided_before_receipt": ErrorCode(
        "decided_before_receipt",
        "domain",
        fi="Päätös ei voi edeltää vastaanottoa.",
        sv="Beslutet kan inte föregå mottagandet.",
        en="The decision cannot precede the receipt.",
    ),
    "decided_in_future": ErrorCode(
        "decided_in_future",
        "domain",
        fi="Päätöksen päivä on tulevaisuudessa.",
        sv="Beslutsdatumet ligger i framtiden.",
        en="The decision date is in the future.",
    ),
    "urgency_already_assessed": ErrorCode(
        "urgency_already_assessed",
        "domain",
        fi="Yhteydenoton kiireellisyys on jo arvioitu.",
        sv="Kontaktens brådska har redan bedömts.",
        en="The urgency of this referral is already assessed.",
    ),
    "assessed_in_future": ErrorCode(
        "assessed_in_future",
        "domain",
        fi="Arvioinnin aika on tulevaisuudessa.",
        sv="Bedömningens tid ligger i framtiden.",
        en="The assessment time is in the future.",
    ),
    "assessed_before_receipt": ErrorCode(
        "assessed_before_receipt",
        "domain",
        fi="Arviointi ei voi edeltää vastaanottoa.",
        sv="Bedömningen kan inte föregå mottagandet.",
        en="The assessment cannot precede the receipt.",
    ),
    "reason_required": ErrorCode(
        "reason_required",
        "domain",
        fi="Kerro, miksi huoltajille kertominen vaarantaisi lapsen.",
        sv="Ange varför det skulle äventyra barnet att informera vårdnadshavarna.",
        en="Give the reason why telling the guardians would endanger the child.",
    ),
    "assessment_not_started": ErrorCode(
        "assessment_not_started",
        "domain",
        fi="Arviointia ei ole aloitettu.",
        sv="Bedömningen har inte inletts.",
        en="The assessment has not been started.",
    ),
    "cancelled": ErrorCode(
        "cancelled", "domain", fi="Tapaaminen on peruttu.", sv="Mötet är inställt.", en="The meeting was cancelled."
    ),
    "case_closed": ErrorCode(
        "case_closed", "domain", fi="Asiakkuus on päättynyt.", sv="Klientskapet har avslutats.", en="The case is closed."
    ),
    "completed_before_start": ErrorCode(
        "completed_before_start",
        "domain",
        fi="Valmistuminen ei voi edeltää aloitusta.",
        sv="Slutförandet kan inte föregå starten.",
        en="Completion cannot precede the start.",
    ),
    "consent_missing": ErrorCode(
        "consent_missing",
        "domain",
        fi="Perhe ei ole antanut lupaa koollekutsumiseen.",
        sv="Familjen har inte gett samtycke till sammankallandet.",
        en="The family has not consented to convening the team.",
    ),
    "double_booked": ErrorCode(
        "double_booked",
        "domain",
        fi="Varattu jo samaan aikaan.",
        sv="Redan bokad vid samma tid.",
        en="Already booked at that time.",
    ),
    "duplicate": ErrorCode("duplicate", "domain", fi="Nimetty kahdesti.", sv="Angiven två gånger.", en="Named twice."),
    "duplicate_area": ErrorCode(
        "duplicate_area",
        "domain",
        fi="Hyvinvoinnin tähden alue on arvioitu kahdesti.",
        sv="Ett område i välmåendestjärnan har bedömts två gånger.",
        en="A wellbeing-star area is scored twice.",
    ),
    "duplicate_participant": ErrorCode(
        "duplicate_participant",
        "domain",
        fi="Osallistuja on listattu kahdesti.",
        sv="En deltagare finns två gånger.",
        en="A participant is listed twice.",
    ),
    "ends_before_start": ErrorCode(
        "ends_before_start",
        "domain",
        fi="Tapaamisen on päätyttävä alkamisen jälkeen.",
        sv="Mötet måste sluta efter att det börjat.",
        en="The meeting must end after it starts.",
    ),
    "family_missing": ErrorCode(
        "family_missing", "domain", fi="Perhe on kutsuttava.", sv="Familjen måste bjudas in.", en="The family must be invited."
    ),
    "in_past": ErrorCode(
        "in_past",
        "domain",
        fi="Ajan on oltava tulevaisuudessa.",
        sv="Tiden måste vara i framtiden.",
        en="The time must be in the future.",
    ),
    "invalid_outcome": ErrorCode(
        "invalid_outcome", "domain", fi="Tuntematon lopputulos.", sv="Okänt utfall.", en="Unknown outcome."
    ),
    "invalid_personal_id": ErrorCode(
        "invalid_personal_id",
        "domain",
        fi="Virheellinen henkilötunnus.",
        sv="Ogiltig personbeteckning.",
        en="Not a valid henkilötunnus.",
    ),
    "meeting_of_other_case": ErrorCode(
        "meeting_of_other_case",
        "domain",
        fi="Tapaaminen kuuluu toiseen asiakkuuteen.",
        sv="Mötet hör till ett annat ärende.",
        en="That meeting belongs to another case.",
    ),
    "naive_datetime": ErrorCode(
        "naive_datetime",
        "domain",
        fi="Aikaleima tarvitsee aikavyöhykkeen.",
        sv="Tidsstämpeln behöver en tidszon.",
        en="Timestamp needs a time zone.",
    ),
    "no_feasible_slot": ErrorCode(
        "no_feasible_slot",
        "domain",
        fi="Kaikille sopivaa aikaa ei löydy hakuajalta.",
        sv="Ingen tid som passar alla inom sökperioden.",
        en="No common time within the search horizon.",
    ),
    "no_room": ErrorCode(
        "no_room",
        "domain",
        fi="Kunnassa ei ole riittävän suurta tilaa.",
        sv="Inget rum i kommunen rymmer alla.",
        en="No room in the municipality seats everyone.",
    ),
    "no_slot_before_deadline": ErrorCode(
        "no_slot_before_deadline",
        "domain",
        fi="Kaikille sopivaa aikaa ei löydy ennen määräaikaa.",
        sv="Ingen tid som passar alla före tidsfristen.",
        en="No common time before the case's deadline.",
    ),
    "not_linked": ErrorCode(
        "not_linked",
        "domain",
        fi="Yhteydenotto avasi asiakkuuden, sitä ei ole liitetty.",
        sv="Kontakten öppnade klientskapet; den är inte kopplad.",
        en="The referral opened its case; it is not linked.",
    ),
    "not_open": ErrorCode(
        "not_open",
        "domain",
        fi="Tapaaminen on jo pidetty tai peruttu.",
        sv="Mötet är redan hållet eller inställt.",
        en="The meeting is already held or cancelled.",
    ),
    "not_responsible_worker": ErrorCode(
        "not_responsible_worker",
        "domain",
        fi="Vain suunnitelman vastuutyöntekijä kirjaa seurannan.",
        sv="Endast planens ansvariga arbetstagare registrerar uppföljningen.",
        en="Only the plan's responsible worker records the follow-up.",
    ),
    "not_held": ErrorCode(
        "not_held",
        "domain",
        fi="Palautetta voi antaa vasta pidetystä tapaamisesta.",
        sv="Respons kan ges först när mötet har hållits.",
        en="Feedback can be given only on a meeting that was held.",
    ),
    "not_started": ErrorCode(
        "not_started",
        "domain",
        fi="Tapaaminen ei ole vielä alkanut.",
        sv="Mötet har inte börjat ännu.",
        en="The meeting has not started yet.",
    ),
    "plan_closed": ErrorCode(
        "plan_closed", "domain", fi="Suunnitelma on suljettu.", sv="Planen är avslutad.", en="The plan is closed."
    ),
    "plan_incomplete": ErrorCode(
        "plan_incomplete",
        "domain",
        fi="Suunnitelman rungosta puuttuu osa.",
        sv="En del av planens ram saknas.",
        en="A part of the plan frame is missing.",
    ),
    "professional_missing": ErrorCode(
        "professional_missing",
        "domain",
        fi="Tarvitaan vähintään yksi ammattilainen.",
        sv="Minst en yrkesperson behövs.",
        en="At least one professional is needed.",
    ),
    "proposal_closed": ErrorCode(
        "proposal_closed",
        "domain",
        fi="Ehdotus ei ole enää avoin.",
        sv="Förslaget är inte längre öppet.",
        en="The proposal is no longer open.",
    ),
    "recipient_required": ErrorCode(
        "recipient_required",
        "domain",
        fi="Nimeä, kenelle suunnitelman saa jakaa.",
        sv="Ange vem planen får delas med.",
        en="Name the party the plan may be shared with.",
    ),
    "referrer_consent_missing": ErrorCode(
        "referrer_consent_missing",
        "domain",
        fi="Perhe ei ole antanut lupaa ilmoittajan kutsumiseen.",
        sv="Familjen har inte samtyckt till att anmälaren bjuds in.",
        en="The family has not consented to inviting the referrer.",
    ),
    "responsible_not_professional": ErrorCode(
        "responsible_not_professional",
        "domain",
        fi="Vastuutyöntekijän on oltava tapaamisen ammattilainen.",
        sv="Den ansvariga arbetstagaren måste vara en av yrkespersonerna.",
        en="The responsible worker must be one of the professionals present.",
    ),
    "responsible_not_public": ErrorCode(
        "responsible_not_public",
        "domain",
        fi="Vastuutyöntekijän on oltava julkisen palvelun työntekijä.",
        sv="Den ansvariga arbetstagaren måste arbeta inom offentlig service.",
        en="The responsible worker must work in a public service.",
    ),
    "room_too_small": ErrorCode(
        "room_too_small", "domain", fi="Tila on liian pieni.", sv="Rummet är för litet.", en="The room does not seat everyone."
    ),
    "too_far": ErrorCode(
        "too_far",
        "domain",
        fi="Seuraavan yhteydenoton on oltava vuoden sisällä.",
        sv="Nästa kontakt måste vara inom ett år.",
        en="The next contact must be within a year.",
    ),
    "too_many_responsible": ErrorCode(
        "too_many_responsible",
        "domain",
        fi="Yksi vastuutyöntekijä tai työpari.",
        sv="En ansvarig arbetstagare eller ett par.",
        en="One responsible worker or a pair.",
    ),
    "unknown_case": ErrorCode(
        "unknown_case", "domain", fi="Tapausta ei löydy.", sv="Ärendet finns inte.", en="No open case with this id."
    ),
    "unknown_meeting": ErrorCode(
        "unknown_meeting", "domain", fi="Tapaamista ei löydy.", sv="Mötet finns inte.", en="No such meeting."
    ),
    "unknown_participant": ErrorCode(
        "unknown_participant",
        "domain",
        fi="Nimetty henkilö ei ole listalla, asiakkuuden yhteystiedoissa tai tapaamiseen kutsuttu.",
        sv="En angiven person finns inte i listan, bland ärendets kontakter eller bland de inbjudna.",
        en="Someone named is not in the roster, among the case's contacts or invited to the meeting.",
    ),
    "unknown_role": ErrorCode(
        "unknown_role",
        "domain",
        fi="Kysyttyä roolia ei ole kenelläkään.",
        sv="Ingen har den begärda rollen.",
        en="Nobody in the roster has a role asked for.",
    ),
    "unknown_municipality": ErrorCode(
        "unknown_municipality",
        "domain",
        fi="Kunnalla ei ole ammattilaisia listalla.",
        sv="Kommunen har inga yrkesutbildade i listan.",
        en="The roster has no professionals in this municipality.",
    ),
    "unknown_room": ErrorCode(
        "unknown_room", "domain", fi="Tilaa ei ole listalla.", sv="Rummet finns inte i listan.", en="No such room in the roster."
    ),
    "valid_until_in_past": ErrorCode(
        "valid_until_in_past",
        "domain",
        fi="Päättymispäivä on menneisyydessä.",
        sv="Slutdatumet har passerat.",
        en="The end date is in the past.",
    ),
    "version_conflict": ErrorCode(
        "version_conflict",
        "domain",
        fi="Suunnitelmaa on muutettu välillä; lataa se uudelleen.",
        sv="Planen har ändrats under tiden; ladda om den.",
        en="The plan was changed meanwhile; reload it.",
    ),
    # -- intake rejection reasons ---------------------------------------------------------------
    "invalid_length": ErrorCode(
        "invalid_length",
        "intake",
        fi="Henkilötunnuksen pituus on väärä.",
        sv="Personbeteckningen har fel längd.",
        en="Personal identity code has the wrong length.",
    ),
    "invalid_century_sign": ErrorCode(
        "invalid_century_sign",
        "intake",
        fi="Henkilötunnuksen välimerkki on väärä.",
        sv="Fel skiljetecken i personbeteckningen.",
        en="Invalid century sign in personal identity code.",
    ),
    "invalid_format": ErrorCode(
        "invalid_format",
        "intake",
        fi="Henkilötunnus on väärässä muodossa.",
        sv="Personbeteckningen har fel format.",
        en="Personal identity code has the wrong format.",
    ),
    "invalid_date": ErrorCode(
        "invalid_date",
        "intake",
        fi="Henkilötunnuksen päivämäärä on mahdoton.",
        sv="Datumet i personbeteckningen är omöjligt.",
        en="Personal identity code has an impossible date.",
    ),
    "invalid_individual_number": ErrorCode(
        "invalid_individual_number",
        "intake",
        fi="Henkilötunnuksen yksilönumero on väärä.",
        sv="Fel individnummer i personbeteckningen.",
        en="Invalid individual number in personal identity code.",
    ),
    "submitted_at_in_future": ErrorCode(
        "submitted_at_in_future",
        "intake",
        fi="Vastaanottoaika on tulevaisuudessa.",
        sv="Mottagningstiden ligger i framtiden.",
        en="submitted_at is in the future (more than the allowed clock skew ahead).",
    ),
    "submitted_at_too_old": ErrorCode(
        "submitted_at_too_old",
        "intake",
        fi="Vastaanottoaika on liian kaukana menneisyydessä.",
        sv="Mottagningstiden ligger för långt tillbaka.",
        en="submitted_at is older than the intake accepts.",
    ),
    "submission_id_reused": ErrorCode(
        "submission_id_reused",
        "intake",
        fi="Lähetyksen tunnus on jo käytetty toisenlaiseen lähetykseen; anna jokaiselle lähetykselle oma tunnus.",
        sv="Inlämningens id har redan använts för en annan inlämning; ge varje inlämning ett eget id.",
        en="This submission id was already used for a different submission; give each submission its own id.",
    ),
    "invalid_checksum": ErrorCode(
        "invalid_checksum",
        "intake",
        fi="Henkilötunnuksen tarkistusmerkki ei täsmää.",
        sv="Kontrolltecknet i personbeteckningen stämmer inte.",
        en="Personal identity code checksum does not match.",
    ),
    "identity_missing": ErrorCode(
        "identity_missing",
        "intake",
        fi="Anna lapsen henkilötunnus tai syntymäaika.",
        sv="Ange barnets personbeteckning eller födelsedatum.",
        en="Give the child's personal identity code or date of birth.",
    ),
    "birth_date_mismatch": ErrorCode(
        "birth_date_mismatch",
        "intake",
        fi="Syntymäaika ei vastaa henkilötunnusta.",
        sv="Födelsedatumet stämmer inte med personbeteckningen.",
        en="Date of birth does not match the personal identity code.",
    ),
    "birth_date_in_future": ErrorCode(
        "birth_date_in_future",
        "intake",
        fi="Syntymäaika on tulevaisuudessa.",
        sv="Födelsedatumet ligger i framtiden.",
        en="Date of birth is in the future.",
    ),
    "not_a_child": ErrorCode(
        "not_a_child",
        "intake",
        fi="Henkilö ei ole alaikäinen.",
        sv="Personen är inte minderårig.",
        en="The person is not a child (under 18).",
    ),
    "duplicate_child": ErrorCode(
        "duplicate_child",
        "intake",
        fi="Sama lapsi on annettu kahdesti.",
        sv="Samma barn har angetts två gånger.",
        en="The same child is given twice.",
    ),
    "invalid_phone": ErrorCode(
        "invalid_phone",
        "intake",
        fi="Puhelinnumero on virheellinen.",
        sv="Telefonnumret är ogiltigt.",
        en="Invalid phone number.",
    ),
    "invalid_email": ErrorCode(
        "invalid_email",
        "intake",
        fi="Sähköpostiosoite on virheellinen.",
        sv="E-postadressen är ogiltig.",
        en="Invalid e-mail address.",
    ),
    "contact_missing": ErrorCode(
        "contact_missing",
        "intake",
        fi="Huoltajalle tarvitaan puhelinnumero tai sähköposti.",
        sv="Vårdnadshavaren behöver telefonnummer eller e-post.",
        en="A guardian needs a phone number or an e-mail address.",
    ),
    "guardian_required": ErrorCode(
        "guardian_required",
        "intake",
        fi="Anna vähintään yksi huoltaja.",
        sv="Ange minst en vårdnadshavare.",
        en="At least one guardian is required for this channel.",
    ),
    "referrer_required": ErrorCode(
        "referrer_required",
        "intake",
        fi="Ilmoittajan tiedot puuttuvat.",
        sv="Anmälarens uppgifter saknas.",
        en="The referrer is required for this channel.",
    ),
    "referrer_must_be_professional": ErrorCode(
        "referrer_must_be_professional",
        "intake",
        fi="Ilmoittajan on oltava ammattilainen.",
        sv="Anmälaren måste vara en yrkesperson.",
        en="The referrer must be a professional for this channel.",
    ),
    "referrer_not_allowed": ErrorCode(
        "referrer_not_allowed",
        "intake",
        fi="Perheen omassa yhteydenotossa ei ole ilmoittajaa.",
        sv="Familjens egen kontakt har ingen anmälare.",
        en="The family's own contact form has no referrer.",
    ),
    "concern_required": ErrorCode(
        "concern_required", "intake", fi="Kuvaa huoli.", sv="Beskriv oron.", en="Describe the concern."
    ),
    "channel_details_required": ErrorCode(
        "channel_details_required",
        "intake",
        fi="Kanavan tiedot puuttuvat.",
        sv="Kanalens uppgifter saknas.",
        en="The channel's details are required.",
    ),
    "channel_details_mismatch": ErrorCode(
        "channel_details_mismatch",
        "intake",
        fi="Tiedot eivät kuulu tähän kanavaan.",
        sv="Uppgifterna hör inte till denna kanal.",
        en="These details belong to another channel.",
    ),
    "guardian_not_present": ErrorCode(
        "guardian_not_present",
        "intake",
        fi="Yhteydenotto tehdään yhdessä huoltajan kanssa.",
        sv="Kontakten görs tillsammans med vårdnadshavaren.",
        en="A joint contact is made together with a guardian.",
    ),
    "language_unspecified": ErrorCode(
        "language_unspecified",
        "intake",
        fi="Kerro perheen kieli tai tulkin tarve.",
        sv="Ange familjens språk eller behov av tolk.",
        en="Give the family's language or the need for an interpreter.",
    ),
    "unprocessable": ErrorCode(
        "unprocessable",
        "intake",
        fi="Ilmoitusta ei voitu käsitellä.",
        sv="Anmälan kunde inte behandlas.",
        en="The submission could not be processed.",
    ),
}

GENERIC = ERRORS["invalid_value"]
"""The text of a code that is not registered (a test keeps that from happening)."""


def message(code: str) -> dict[str, str]:
    """The registered fi/sv/en text of a code."""
    return ERRORS.get(code, GENERIC).message()


class DomainError(Exception):
    """A command was refused for a reason the user can fix.

    ``field`` and ``code`` are machine-readable; ``message`` is by language (fi, sv, en): the
    registry's text of the code, unless the caller gives a more specific one.
    """

    def __init__(self, code: str, field: str = "$", en: str = "", fi: str = "", sv: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        self.message = message(code) | {k: v for k, v in {"fi": fi, "sv": sv, "en": en}.items() if v}

    def __str__(self) -> str:  # never carries input values
        return f"{self.code} at {self.field}"


class NotFound(DomainError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", what)
