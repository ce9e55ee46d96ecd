"""Statutory deadlines (määräajat): the 7-working-day decision, the 3-month assessment, and their timers.

Plain Python: no I/O. Days are Helsinki calendar days; working days exclude weekends, Finnish
public holidays, Christmas Eve and Midsummer Eve (shared/calendar.py).
"""

from __future__ import annotations

import calendar as _cal
from datetime import date, datetime, time, timedelta
from uuid import UUID

from shared.calendar import add_working_days, helsinki_date, is_working_day
from shared.clock import HELSINKI

DECISION_WORKING_DAYS = 7
ASSESSMENT_MONTHS = 3


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it has no such day (31.8. + 3 -> 30.11.)."""
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, _cal.monthrange(y, m)[1]))


def decision_due(received_at: datetime) -> date:
    """Decide on a service-need assessment within 7 working days of receipt (LSL 26 §, SHL 36 §); the
    day of receipt is not counted. Days are Helsinki calendar days: a referral received at 23:30 UTC
    on a Friday in winter was received on Saturday in Helsinki, and Monday is its first day."""
    return add_working_days(helsinki_date(received_at), DECISION_WORKING_DAYS)


def completion_due(received: datetime | date) -> date:
    """Complete the service-need assessment within 3 months of receipt (asian vireilletulosta; LSL 27 §,
    SHL 36 §), not of the assessment's start.

    Month arithmetic follows the Act on the Calculation of Statutory Time Limits (laki säädettyjen
    määräaikain laskemisesta 150/1930): the period ends on the day of the third month with the same
    number as the day of receipt; a month without such a day ends it on its last day (30.11. ->
    28.2., or 29.2. in a leap year). A last day on a Saturday, Sunday, public holiday, Christmas Eve
    or Midsummer Eve moves to the next working day (5 §)."""
    start = helsinki_date(received) if isinstance(received, datetime) else received
    d = add_months(start, ASSESSMENT_MONTHS)
    while not is_working_day(d):
        d += timedelta(days=1)
    return d


def urgency_timer_moments(received_at: datetime, within: timedelta, escalate_after: timedelta) -> tuple[datetime, datetime]:
    """(due, escalation): the urgency is assessed within ``within`` of receipt, any hour of the week
    (not working hours); past ``due`` the on-duty social worker is paged, past the escalation the
    team lead."""
    due = received_at + within
    return due, due + escalate_after


def working_days_before(d: date, n: int) -> date:
    """The n-th working day before ``d`` (``d`` itself not counted); ``d`` when n == 0."""
    while n > 0:
        d -= timedelta(days=1)
        if is_working_day(d):
            n -= 1
    return d


APPROACHING_AT = time(8, 0)
"""Local time of day at which a 'deadline approaching' reminder fires."""


def timer_moments(due: date, lead_working_days: int) -> tuple[datetime, datetime]:
    """(approaching, breached) as aware datetimes: the reminder at 08:00 Helsinki ``lead`` working days
    before the last day; the breach at the start of the day after the last day."""
    approaching = datetime.combine(working_days_before(due, lead_working_days), APPROACHING_AT, tzinfo=HELSINKI)
    breached = datetime.combine(due + timedelta(days=1), time(0, 0), tzinfo=HELSINKI)
    return approaching, breached


def timer_subject(kind: str, case_id: UUID, which: str) -> str:
    return f"timers.referral.{kind}.{case_id}.{which}"
