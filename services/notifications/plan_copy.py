"""The plan itself in the plan message: the lines that say it is attached and, where a guardian can
sign in, where to see it online. Plain Python, no I/O.

The family's copy (HTML and PDF) is made by the plans service and arrives in ``plan.copy_prepared``;
the e-mail carries it as its HTML body and as attachments to print (``plan.pdf``, ``plan.html``).
"""

from __future__ import annotations

import base64
from typing import Any

from shared.catalogue import N_

from .templates import LANGUAGES, gettext

PLAN_TEMPLATES = frozenset({"plan_agreed", "plan_revised"})

ATTACHED = N_("The plan is in this message, and a copy to print is attached (PDF and HTML).")
ONLINE = N_("The plan can also be seen online: %(url)s (sign in with strong electronic identification).")
FILE_NAME = N_("joint-plan")  # the attachments' name, without version and extension


def wants_copy(template: str, params: dict[str, Any]) -> bool:
    return template in PLAN_TEMPLATES and bool(params.get("plan_id"))


def body_with_copy(body: str, language: str, attached: bool, online_url: str | None) -> str:
    lang = language if language in LANGUAGES else "fi"
    lines = [body]
    if attached:
        lines.append(gettext(lang, ATTACHED))
    if online_url:
        lines.append(gettext(lang, ONLINE) % {"url": online_url})
    return "\n\n".join(lines)


def attachments(copy: Any, version: int) -> tuple[tuple[str, str, bytes], ...]:
    """(file name, MIME type, bytes) of the PDF and the HTML page."""
    language = copy.language if copy.language in LANGUAGES else "fi"
    name = f"{gettext(language, FILE_NAME)}-v{version}"
    return (
        (f"{name}.pdf", "application/pdf", base64.b64decode(copy.pdf_base64)),
        (f"{name}.html", "text/html", copy.html.encode("utf-8")),
    )
