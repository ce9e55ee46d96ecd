"""Calendar replies as Outlook, Gmail and Apple Calendar send them (tests/samples/imip/), filled in
for one invitation and encoded as each client encodes its calendar part."""

from __future__ import annotations

import base64
import quopri
from pathlib import Path

SAMPLES = Path(__file__).parents[1] / "samples" / "imip"
CLIENTS = {"outlook": "outlook_accept", "gmail": "gmail_decline", "apple": "apple_tentative"}


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def reply_mail(client: str, *, uid: str, sequence: int, attendee: str, organizer: str) -> bytes:
    """The reply mail ``client`` sends when ``attendee`` answers the invitation ``uid``."""
    values = {"UID": uid, "SEQUENCE": str(sequence), "ATTENDEE": attendee, "ORGANIZER": organizer}
    ics = _fill((SAMPLES / f"{CLIENTS[client]}.ics").read_text(encoding="utf-8"), values)
    ics_bytes = "\r\n".join(ics.splitlines()).encode("utf-8") + b"\r\n"
    encoded = {
        "CALENDAR": ics.rstrip("\n"),
        "CALENDAR_BASE64": base64.encodebytes(ics_bytes).decode("ascii").rstrip("\n"),
        "CALENDAR_QP": quopri.encodestring(ics_bytes).decode("ascii").rstrip("\n"),
    }
    eml = _fill(_fill((SAMPLES / f"{CLIENTS[client]}.eml").read_text(encoding="utf-8"), values), encoded)
    return "\r\n".join(eml.splitlines()).encode("utf-8") + b"\r\n"
