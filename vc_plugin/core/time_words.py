"""Times as people say them: "10:05 Uhr" and "10:05–10:35 Uhr" in German, "10:05 AM" in English;
never seconds, never a time zone's long name (the display zone is the practice's own).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from babel.dates import format_date, format_time


def time_of_day(moment: datetime, zone: tzinfo, lang: str) -> str:
    clock = format_time(moment, format="short", tzinfo=zone, locale=lang)
    return f"{clock} Uhr" if lang == "de" else clock


def time_span(start: datetime, end: datetime, zone: tzinfo, lang: str) -> str:
    """German puts "Uhr" once, after the end; English names each time in full."""
    first = format_time(start, format="short", tzinfo=zone, locale=lang)
    if lang == "de":
        return f"{first}–{format_time(end, format='short', tzinfo=zone, locale=lang)} Uhr"
    return f"{first}–{time_of_day(end, zone, lang)}"


def day_and_time(moment: datetime, zone: tzinfo, lang: str) -> str:
    """ "Montag, 23. November 2026, 10:05 Uhr": for mails, where the reader has no page around it."""
    day = format_date(moment.astimezone(zone), format="full", locale=lang)
    return f"{day}, {time_of_day(moment, zone, lang)}"
