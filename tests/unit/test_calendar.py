from datetime import date

from shared.calendar import add_working_days, is_working_day, working_days_between


def test_weekend_and_holidays_are_not_working_days() -> None:
    assert not is_working_day(date(2026, 11, 21))  # Saturday
    assert not is_working_day(date(2026, 12, 24))  # Christmas Eve
    assert not is_working_day(date(2026, 6, 19))  # Midsummer Eve
    assert not is_working_day(date(2026, 4, 6))  # Easter Monday
    assert is_working_day(date(2026, 11, 23))


def test_seven_working_days_across_christmas_and_new_year() -> None:
    # Received Mon 21.12.2026: 22, 23, (24-27 off), 28, 29, 30, 31, (1.1 off), (2-3 weekend), 4
    assert add_working_days(date(2026, 12, 21), 7) == date(2027, 1, 4)
    assert working_days_between(date(2026, 12, 21), date(2027, 1, 4)) == 7


def test_seven_working_days_across_easter_and_midsummer() -> None:
    # Received Wed 1.4.2026: 2, (3 Good Friday, 4-5, 6 Easter Monday), 7, 8, 9, 10, 13, 14
    assert add_working_days(date(2026, 4, 1), 7) == date(2026, 4, 14)
    # Received Wed 17.6.2026: 18, (19 Midsummer Eve, 20-21), 22, 23, 24, 25, 26, 29
    assert add_working_days(date(2026, 6, 17), 7) == date(2026, 6, 29)


def test_received_on_a_saturday_counts_from_monday() -> None:
    assert add_working_days(date(2026, 11, 21), 1) == date(2026, 11, 23)
