"""Message templates in Finnish, Swedish and English (Jinja2), with Babel for dates and times shown
in Europe/Helsinki. Plain Python: no I/O.

Templates carry no personal data about the family: they say that something happened, when and where
to read more. Parameters are ids, times, rooms and category codes only.
"""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_time
from jinja2 import Environment, StrictUndefined, Template

from shared.clock import HELSINKI

LANGUAGES = ("fi", "sv", "en")
# Finland's own variants: Swedish as written in Finland (sv_FI), English as in Europe.
LOCALES = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}

# name -> language -> (subject, body)
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "referral_ack": {
        "fi": (
            "Yhteydenottonne on vastaanotettu",
            "Koolle on vastaanottanut yhteydenottonne {{ received_at|dt }}. Perhekeskus ottaa yhteyttä.",
        ),
        "sv": (
            "Er kontakt har tagits emot",
            "Koolle har tagit emot er kontakt {{ received_at|dt }}. Familjecentret tar kontakt.",
        ),
        "en": (
            "Your referral was received",
            "Koolle received your referral on {{ received_at|dt }}. The family centre will be in touch.",
        ),
    },
    "referral_assigned": {
        "fi": (
            "Uusi yhteydenotto tiimille",
            "Tiimillenne on ohjattu uusi yhteydenotto (asia {{ case_ref }}). Lue tiedot Koolle-työtilasta.",
        ),
        "sv": (
            "Ny kontakt till teamet",
            "En ny kontakt har styrts till ert team (ärende {{ case_ref }}). Läs uppgifterna i Koolle.",
        ),
        "en": (
            "New referral for your team",
            "A new referral was routed to your team (case {{ case_ref }}). Read it in the Koolle staff app.",
        ),
    },
    "referral_urgent": {
        "fi": (
            "KIIREELLINEN yhteydenotto",
            "Kiireellinen yhteydenotto, {{ municipality }} (asia {{ case_ref }}). Arvioi välittömästi Koolle-työtilassa.",
        ),
        "sv": ("BRÅDSKANDE kontakt", "Brådskande kontakt, {{ municipality }} (ärende {{ case_ref }}). Bedöm genast i Koolle."),
        "en": (
            "URGENT referral",
            "Urgent referral, {{ municipality }} (case {{ case_ref }}). Assess at once in the Koolle staff app.",
        ),
    },
    "referral_linked": {
        "fi": (
            "Uusi yhteydenotto avoimeen asiaan",
            "Avoimeen asiaan {{ case_ref }} on tullut uusi yhteydenotto ({{ repeat_count }}.).",
        ),
        "sv": ("Ny kontakt i öppet ärende", "Ett öppet ärende {{ case_ref }} har fått en ny kontakt (nr {{ repeat_count }})."),
        "en": ("New referral on an open case", "Open case {{ case_ref }} received another referral (no. {{ repeat_count }})."),
    },
    "deadline_approaching": {
        "fi": (
            "Määräaika lähestyy",
            "Määräaika lähestyy: {{ deadline|deadline }}, viimeistään {{ due_by|d }} (asia {{ case_ref }}).",
        ),
        "sv": (
            "Tidsfristen närmar sig",
            "Tidsfristen närmar sig: {{ deadline|deadline }}, senast {{ due_by|d }} (ärende {{ case_ref }}).",
        ),
        "en": ("Deadline approaching", "Deadline approaching: {{ deadline|deadline }}, by {{ due_by|d }} (case {{ case_ref }})."),
    },
    "deadline_breached": {
        "fi": (
            "Määräaika on ylittynyt",
            "Määräaika on ylittynyt: {{ deadline|deadline }}, viimeistään {{ due_by|d }} (asia {{ case_ref }}).",
        ),
        "sv": (
            "Tidsfristen har överskridits",
            "Tidsfristen har överskridits: {{ deadline|deadline }}, senast {{ due_by|d }} (ärende {{ case_ref }}).",
        ),
        "en": ("Deadline breached", "Deadline breached: {{ deadline|deadline }}, due by {{ due_by|d }} (case {{ case_ref }})."),
    },
    "meeting_invitation": {
        "fi": (
            "Kutsu yhteiseen tapaamiseen",
            "Teidät on kutsuttu yhteiseen tapaamiseen {{ starts_at|dt }}, {{ room }}. Tiedot: Koolle-palvelu.",
        ),
        "sv": (
            "Inbjudan till gemensamt möte",
            "Ni är inbjudna till ett gemensamt möte {{ starts_at|dt }}, {{ room }}. Detaljer: Koolle-tjänsten.",
        ),
        "en": (
            "Invitation to a joint meeting",
            "You are invited to a joint meeting on {{ starts_at|dt }}, {{ room }}. Details: the Koolle service.",
        ),
    },
    "meeting_rescheduled": {
        "fi": (
            "Yhteisen tapaamisen aika on muuttunut",
            "Yhteinen tapaaminen on siirretty: uusi aika {{ starts_at|dt }}, {{ room }}.",
        ),
        "sv": (
            "Tiden för det gemensamma mötet har ändrats",
            "Det gemensamma mötet har flyttats: ny tid {{ starts_at|dt }}, {{ room }}.",
        ),
        "en": ("The joint meeting has moved", "The joint meeting has moved: new time {{ starts_at|dt }}, {{ room }}."),
    },
    "meeting_cancelled": {
        "fi": ("Yhteinen tapaaminen on peruttu", "Yhteinen tapaaminen on peruttu. Uudesta ajasta sovitaan kanssanne."),
        "sv": ("Det gemensamma mötet är inställt", "Det gemensamma mötet är inställt. En ny tid avtalas med er."),
        "en": ("The joint meeting is cancelled", "The joint meeting is cancelled. A new time will be agreed with you."),
    },
    "meeting_reminder": {
        "fi": ("Muistutus: yhteinen tapaaminen", "Muistutus: yhteinen tapaaminen {{ starts_at|dt }}."),
        "sv": ("Påminnelse: gemensamt möte", "Påminnelse: gemensamt möte {{ starts_at|dt }}."),
        "en": ("Reminder: joint meeting", "Reminder: joint meeting on {{ starts_at|dt }}."),
    },
    "plan_agreed": {
        "fi": ("Yhteinen suunnitelma on kirjattu", "Yhteinen suunnitelma on kirjattu. Voit lukea sen Koolle-palvelussa."),
        "sv": (
            "Den gemensamma planen är registrerad",
            "Den gemensamma planen är registrerad. Du kan läsa den i Koolle-tjänsten.",
        ),
        "en": ("The joint plan was recorded", "The joint plan was recorded. You can read it in the Koolle service."),
    },
    "plan_shared": {
        "fi": (
            "Yhteinen suunnitelma on jaettu teille",
            "Perheen yhteinen suunnitelma (versio {{ plan_version }}) on jaettu teille. Lue se Koolle-palvelussa.",
        ),
        "sv": (
            "Den gemensamma planen har delats med er",
            "Familjens gemensamma plan (version {{ plan_version }}) har delats med er. Läs den i Koolle-tjänsten.",
        ),
        "en": (
            "A joint plan was shared with you",
            "The family's joint plan (version {{ plan_version }}) was shared with you. Read it in the Koolle service.",
        ),
    },
    "plan_revised": {
        "fi": (
            "Yhteistä suunnitelmaa on päivitetty",
            "Yhteisestä suunnitelmasta on uusi versio ({{ plan_version }}). Voit lukea sen Koolle-palvelussa.",
        ),
        "sv": (
            "Den gemensamma planen har uppdaterats",
            "Det finns en ny version ({{ plan_version }}) av den gemensamma planen. Läs den i Koolle-tjänsten.",
        ),
        "en": (
            "The joint plan was updated",
            "There is a new version ({{ plan_version }}) of the joint plan. You can read it in the Koolle service.",
        ),
    },
    "plan_closed": {
        "fi": ("Yhteinen suunnitelma on päätetty", "Yhteisen suunnitelman mukainen työ on päättynyt. Kiitos yhteistyöstä."),
        "sv": ("Den gemensamma planen har avslutats", "Arbetet enligt den gemensamma planen har avslutats. Tack för samarbetet."),
        "en": ("The joint plan was closed", "The work under the joint plan has ended. Thank you for working together."),
    },
    "followup_reminder": {
        "fi": ("Muistutus: sovittu yhteydenotto", "Sovittu yhteydenotto on {{ due_at|dt }}."),
        "sv": ("Påminnelse: överenskommen kontakt", "Den överenskomna kontakten är {{ due_at|dt }}."),
        "en": ("Reminder: agreed follow-up", "The agreed follow-up contact is on {{ due_at|dt }}."),
    },
    "followup_due": {
        "fi": ("Sovittu yhteydenotto on nyt", "Sovitun yhteydenoton aika on {{ due_at|dt }}."),
        "sv": ("Dags för överenskommen kontakt", "Tiden för den överenskomna kontakten är {{ due_at|dt }}."),
        "en": ("The agreed follow-up is due", "The agreed follow-up contact is due {{ due_at|dt }}."),
    },
    "followup_overdue": {
        "fi": (
            "Sovittu yhteydenotto on myöhässä",
            "Sovittu yhteydenotto ({{ due_at|dt }}) ei ole vielä toteutunut. Vastuutyöntekijä ottaa yhteyttä.",
        ),
        "sv": (
            "Den överenskomna kontakten är försenad",
            "Den överenskomna kontakten ({{ due_at|dt }}) har inte skett ännu. Den ansvariga arbetstagaren tar kontakt.",
        ),
        "en": (
            "The agreed follow-up is overdue",
            "The agreed follow-up contact ({{ due_at|dt }}) has not happened yet. The responsible worker will be in touch.",
        ),
    },
    "followup_rescheduled": {
        "fi": ("Sovittu yhteydenotto on siirtynyt", "Sovittu yhteydenotto on siirretty uuteen aikaan: {{ due_at|dt }}."),
        "sv": (
            "Den överenskomna kontakten har flyttats",
            "Den överenskomna kontakten har flyttats till en ny tid: {{ due_at|dt }}.",
        ),
        "en": ("The agreed follow-up has moved", "The agreed follow-up contact has moved to {{ due_at|dt }}."),
    },
    "assessment_completed": {
        "fi": (
            "Palvelutarpeen arviointi on valmistunut",
            "Tekemänne yhteydenoton perusteella tehty arviointi on valmistunut. Lopputulos: {{ outcome|outcome }}.",
        ),
        "sv": (
            "Bedömningen av servicebehovet är klar",
            "Bedömningen som gjordes utifrån er kontakt är klar. Resultat: {{ outcome|outcome }}.",
        ),
        "en": (
            "The service-need assessment is complete",
            "The assessment following your referral is complete. Outcome: {{ outcome|outcome }}.",
        ),
    },
    "assessment_done": {
        "fi": (
            "Palvelutarpeen arviointi on valmistunut",
            "Tekemänne yhteydenoton perusteella tehty arviointi on valmistunut (asia {{ case_ref }}). Kiitos yhteydenotosta.",
        ),
        "sv": (
            "Bedömningen av servicebehovet är klar",
            "Bedömningen som gjordes utifrån er kontakt är klar (ärende {{ case_ref }}). Tack för kontakten.",
        ),
        "en": (
            "The service-need assessment is complete",
            "The assessment following your referral is complete (case {{ case_ref }}). Thank you for the referral.",
        ),
    },
    "urgency_overdue": {
        "fi": (
            "KIIREELLISYYS ARVIOIMATTA",
            "Kiireellisyyttä ei ole arvioitu määräajassa ({{ due_at|dt }}), {{ municipality }} (asia {{ case_ref }}). "
            "Arvioi heti Koolle-työtilassa.",
        ),
        "sv": (
            "BRÅDSKAN INTE BEDÖMD",
            "Brådskan har inte bedömts inom tiden ({{ due_at|dt }}), {{ municipality }} (ärende {{ case_ref }}). "
            "Bedöm genast i Koolle.",
        ),
        "en": (
            "URGENCY NOT ASSESSED",
            "Urgency not assessed in time ({{ due_at|dt }}), {{ municipality }} (case {{ case_ref }}). "
            "Assess at once in the Koolle staff app.",
        ),
    },
    "urgency_overdue_lead": {
        "fi": (
            "KIIREELLISYYS YHÄ ARVIOIMATTA",
            "Päivystävä sosiaalityöntekijä ei ole arvioinut kiireellisyyttä (määräaika {{ due_at|dt }}), "
            "{{ municipality }} (asia {{ case_ref }}). Varmista arviointi heti.",
        ),
        "sv": (
            "BRÅDSKAN FORTFARANDE INTE BEDÖMD",
            "Jourhavande socialarbetare har inte bedömt brådskan (tidsfrist {{ due_at|dt }}), "
            "{{ municipality }} (ärende {{ case_ref }}). Säkerställ bedömningen genast.",
        ),
        "en": (
            "URGENCY STILL NOT ASSESSED",
            "The on-duty social worker has not assessed the urgency (due {{ due_at|dt }}), "
            "{{ municipality }} (case {{ case_ref }}). Make sure it is assessed at once.",
        ),
    },
    "notification_received": {
        "fi": (
            "Lastensuojeluilmoitus on vastaanotettu",
            "Lapsestanne on tehty lastensuojeluilmoitus, ja se on vastaanotettu {{ received_at|dt }}. "
            "Sosiaalityöntekijä on teihin yhteydessä. Voitte kysyä lisää perhekeskuksesta (asia {{ case_ref }}).",
        ),
        "sv": (
            "En barnskyddsanmälan har tagits emot",
            "En barnskyddsanmälan om ert barn har tagits emot {{ received_at|dt }}. "
            "En socialarbetare tar kontakt med er. Ni kan fråga mer vid familjecentret (ärende {{ case_ref }}).",
        ),
        "en": (
            "A child welfare notification was received",
            "A child welfare notification about your child was received on {{ received_at|dt }}. "
            "A social worker will contact you. You can ask the family centre for more (case {{ case_ref }}).",
        ),
    },
}

# An SMS to a family says only that there is a message and where to read it.
PORTAL_NOTICE: dict[str, str] = {
    "fi": "Sinulle on uusi viesti Koolle-palvelussa. Lue se: {{ portal_url }}",
    "sv": "Du har ett nytt meddelande i Koolle-tjänsten. Läs det: {{ portal_url }}",
    "en": "You have a new message in the Koolle service. Read it at {{ portal_url }}",
}

DEADLINES = {
    "assessment_decision": {
        "fi": "päätös palvelutarpeen arvioinnin aloittamisesta",
        "sv": "beslut om att inleda bedömning av servicebehovet",
        "en": "decision on starting the service-need assessment",
    },
    "assessment_completion": {
        "fi": "palvelutarpeen arvioinnin valmistuminen",
        "sv": "färdigställande av bedömningen av servicebehovet",
        "en": "completion of the service-need assessment",
    },
}

OUTCOMES = {
    "services_started": {"fi": "palvelut on aloitettu", "sv": "tjänster har inletts", "en": "services were started"},
    "no_need_for_services": {"fi": "ei palvelujen tarvetta", "sv": "inget behov av tjänster", "en": "no need for services"},
    "referred_elsewhere": {
        "fi": "ohjattu toiseen palveluun",
        "sv": "hänvisad till en annan tjänst",
        "en": "referred to another service",
    },
    "child_welfare_client": {"fi": "lastensuojelun asiakkuus", "sv": "klient inom barnskyddet", "en": "child welfare client"},
    "other": {"fi": "muu", "sv": "annat", "en": "other"},
}


def _env(language: str) -> Environment:
    env = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False)
    locale = Locale.parse(LOCALES[language])  # parsed once, not at every date formatted

    # Formatting a date or a time with babel costs more than the rest of a render; the same days
    # and minutes come round again and again.
    @lru_cache(maxsize=512)
    def full_date(day: date) -> str:
        return format_date(day, "full", locale=locale)

    @lru_cache(maxsize=1440)
    def short_time(hour: int, minute: int) -> str:
        return format_time(time(hour, minute), "short", locale=locale)

    def dt(value: str | datetime) -> str:
        v = datetime.fromisoformat(value) if isinstance(value, str) else value
        local = v.astimezone(HELSINKI)
        return f"{full_date(local.date())} {short_time(local.hour, local.minute)}"

    def d(value: str | date) -> str:
        v = date.fromisoformat(value) if isinstance(value, str) else value
        return format_date(v, "long", locale=locale)

    env.filters["dt"] = dt
    env.filters["d"] = d
    env.filters["deadline"] = lambda k: DEADLINES.get(k, {}).get(language, k)
    env.filters["outcome"] = lambda k: OUTCOMES.get(k, OUTCOMES["other"])[language]
    return env


_ENVS = {lang: _env(lang) for lang in LANGUAGES}
# Compiled templates by (language, source): compiling one costs far more than rendering it, and a
# dispatcher renders the same few templates over and over.
_COMPILED: dict[tuple[str, str], Template] = {}


def _template(language: str, source: str) -> Template:
    t = _COMPILED.get((language, source))
    if t is None:
        t = _COMPILED[(language, source)] = _ENVS[language].from_string(source)
    return t


def template_language(template: str, language: str | None) -> str:
    """The recipient's language when we have it; otherwise Finnish (an interpreter helps with 'other')."""
    return language if language in TEMPLATES[template] else "fi"


def render(template: str, language: str, params: dict[str, Any]) -> tuple[str, str]:
    language = template_language(template, language)
    subject, body = TEMPLATES[template][language]
    return _template(language, subject).render(**params), _template(language, body).render(**params)


def render_portal_notice(language: str, portal_url: str) -> str:
    language = language if language in PORTAL_NOTICE else "fi"
    return _template(language, PORTAL_NOTICE[language]).render(portal_url=portal_url)
