"""The organizer mailbox the notifications service reads calendar replies from: a Maildir
(Python's ``mailbox.Maildir``), filled by the county's mail server. A mail is read from ``new/``
and, once recorded, moved to ``cur/`` with the Seen flag; nothing is deleted (the mail server's
retention applies)."""

from __future__ import annotations

import mailbox
from pathlib import Path


class ReplyMaildir:
    def __init__(self, path: Path) -> None:
        self.box = mailbox.Maildir(Path(path), factory=None, create=True)

    def new(self) -> list[tuple[str, bytes]]:
        """Mails not yet recorded, oldest first."""
        out = []
        for key in sorted(self.box.iterkeys()):
            msg = self.box.get_message(key)
            if "S" not in msg.get_flags():
                out.append((key, self.box.get_bytes(key)))
        return out

    def done(self, key: str) -> None:
        msg = self.box.get_message(key)
        msg.set_subdir("cur")
        msg.add_flag("S")
        self.box[key] = msg
