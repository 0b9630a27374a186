"""What reminders and broadcast reports say. Message ids are English; text lives in bot/locales/.

Every reminder carries a button that stops it (`StopOne`); a typed broadcast carries one that
stops all of the chat's reminders (`StopAll`). The chat side handles both, and owns them: their
data (which messages already delivered carry) is bot/conversation/buttons.py's, their labels
bot/conversation/consent_texts.py's.
"""

from __future__ import annotations

import math
from datetime import date, datetime, tzinfo
from typing import Literal

from bot.conversation.buttons import StopAll, StopOne, decode, encode
from bot.conversation.consent_texts import stop_all_button, stop_this_button
from bot.conversation.replies import Message, ReminderTemplate
from bot.domain.audience import Audience, AudienceKind
from bot.domain.policy import Insurer
from bot.i18n import (
    Translator,
    days_text,
    for_rtl,
    format_date,
    format_gregorian,
    format_hijri,
    hours_text,
    minutes_text,
)

# The codec's own names for the stop buttons, kept for older callers (tests/reminders).
STOP_ALL = encode(StopAll())
STOP_SUB_PREFIX = encode(StopOne(0)).removesuffix("0")


def stop_data(subscription_id: int) -> str:
    return encode(StopOne(subscription_id))


def parse_stop(data: str) -> int | Literal["all"] | None:
    """Button data -> a subscription id, "all", or None when it is not a stop button.

    The data is untrusted: the id must still be checked against the chat pressing it
    (`SubscriptionStore.unsubscribe` does)."""
    match decode(data):
        case StopOne(subscription_id=subscription_id):
            return subscription_id
        case StopAll():
            return "all"
    return None


def expiry_headline(
    masked: str, insurer: Insurer, expiry: date, today: date, tr: Translator
) -> str:
    days = (expiry - today).days
    values = {"masked": masked, "insurer": insurer.name(tr.locale)}
    when = format_date(expiry, tr.locale)
    if days > 0:
        return tr.ngettext(
            "Reminder: the health insurance of {masked} with {insurer} expires in {n} day, "
            "on {date}.",
            "Reminder: the health insurance of {masked} with {insurer} expires in {n} days, "
            "on {date}.",
            days,
            date=when,
            **values,
        )
    if days == 0:
        return tr._(
            "Reminder: today, {date}, is the last day of the health insurance of {masked} "
            "with {insurer}.",
            date=when,
            **values,
        )
    return tr.ngettext(
        "The health insurance of {masked} with {insurer} ended on {date}, {n} day ago.",
        "The health insurance of {masked} with {insurer} ended on {date}, {n} days ago.",
        -days,
        date=when,
        **values,
    )


def expiry_message(
    subscription_id: int,
    masked: str,
    insurer: Insurer,
    expiry: date,
    today: date,
    tr: Translator,
) -> Message:
    """The personalised reminder: whose policy, which insurer, when (Hijri and Gregorian),
    how long is left, what to do, and how to stop."""
    if expiry >= today:
        advice = tr._(
            "What to do: ask your employer or sponsor to renew the policy before it ends, or "
            "your insurer if you pay for it yourself. Once the renewal is registered, "
            "reminders follow the new date."
        )
    else:
        advice = tr._(
            "What to do: without valid insurance, treatment may not be covered. Ask your "
            "employer, sponsor or insurer to renew the policy, then check again with /start."
        )
    footer = tr._(
        "You receive this because you asked for reminders. To stop them, tap the button "
        "below or send /stop."
    )
    text = "\n\n".join((expiry_headline(masked, insurer, expiry, today, tr), advice, footer))
    return Message(
        text,
        buttons=((stop_this_button(subscription_id, tr),),),
        rtl=tr.locale == "ar",
        template=expiry_template(subscription_id, masked, insurer, expiry, today, tr),
    )


def time_left_text(expiry: date, today: date, tr: Translator) -> str:
    """What is left of a policy, as a template's last value ("7 أيام", "today is the last
    day", "none: it ended 3 days ago")."""
    days = (expiry - today).days
    if days > 0:
        return days_text(days, tr)
    if days == 0:
        return tr._("today is the last day")
    return tr.ngettext("none: it ended {n} day ago", "none: it ended {n} days ago", -days)


def expiry_template(
    subscription_id: int,
    masked: str,
    insurer: Insurer,
    expiry: date,
    today: date,
    tr: Translator,
) -> ReminderTemplate:
    """The reminder's values for WhatsApp's approved template (docs/whatsapp-templates.md):
    {{1}} masked number, {{2}} insurer, {{3}} expiry in Hijri, {{4}} in Gregorian, {{5}} time
    left. Values that could reorder Arabic text are isolated, as the Translator does."""
    gregorian = format_gregorian(expiry, tr.locale)
    try:
        hijri = format_hijri(expiry, tr.locale)
    except OverflowError:  # outside the Umm al-Qura table
        hijri = gregorian
    values: tuple[str, ...] = (masked, insurer.name(tr.locale), hijri, gregorian)
    if tr.locale == "ar":
        values = tuple(for_rtl(value) for value in values)
    return ReminderTemplate(
        locale=tr.locale,
        params=(*values, time_left_text(expiry, today, tr)),
        stop_data=stop_data(subscription_id),
    )


def broadcast_message(text: str, tr: Translator) -> Message:
    """An admin's text exactly as typed, plus the way out of all reminders."""
    return Message(text, buttons=((stop_all_button(tr),),), rtl=tr.locale == "ar")


# ---------------------------------------------------------------- admin reports (chat)


def duration_text(seconds: float, tr: Translator) -> str:
    if seconds < 60:
        return tr._("less than a minute")
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return minutes_text(minutes, tr)
    hours, minutes = divmod(minutes, 60)
    if not minutes:
        return hours_text(hours, tr)
    return tr._(
        "{hours} and {minutes}", hours=hours_text(hours, tr), minutes=minutes_text(minutes, tr)
    )


def audience_text(audience: Audience, tr: Translator, insurer: Insurer | None = None) -> str:
    if audience.kind is AudienceKind.EXPIRING:
        return tr.ngettext(
            "subscribers whose insurance expires within {n} day",
            "subscribers whose insurance expires within {n} days",
            audience.days,
        )
    if audience.kind is AudienceKind.EXPIRED:
        return tr._("subscribers whose insurance has expired")
    if audience.kind is AudienceKind.INSURER:
        name = insurer.name(tr.locale) if insurer else audience.insurer
        return tr._("subscribers insured with {insurer}", insurer=name)
    return tr._("all subscribers")


def delivery_lines(
    sent: int,
    failed: int,
    blocked: int,
    skipped: int,
    tr: Translator,
    outside_window: int = 0,
) -> list[str]:
    """`outside_window` is counted in `skipped` and shown apart (only when there are some)."""
    lines = [
        tr._("Sent: {count}", count=sent),
        tr._("Failed: {count}", count=failed),
        tr._("Blocked the bot: {count}", count=blocked),
        tr._("Skipped (stopped reminders): {count}", count=skipped - outside_window),
    ]
    if outside_window:
        # Not failures: WhatsApp takes typed text only within 24 hours of a person's message.
        lines.append(tr._("Outside WhatsApp's 24-hour window: {count}", count=outside_window))
    return lines


def progress_text(
    broadcast_id: int,
    sent: int,
    failed: int,
    blocked: int,
    skipped: int,
    remaining: int,
    eta_seconds: float | None,
    tr: Translator,
    *,
    outside_window: int = 0,
) -> str:
    """The admin's progress message, edited every few seconds while a broadcast runs."""
    lines = [tr._("Broadcast #{id}: sending…", id=broadcast_id)]
    lines += delivery_lines(sent, failed, blocked, skipped, tr, outside_window)
    lines.append(tr._("Remaining: {count}", count=remaining))
    if eta_seconds is not None and remaining:
        lines.append(tr._("Time left: about {duration}", duration=duration_text(eta_seconds, tr)))
    return "\n".join(lines)


def report_text(
    broadcast_id: int,
    outcome: Literal["done", "cancelled", "interrupted"],
    total: int,
    sent: int,
    failed: int,
    blocked: int,
    skipped: int,
    resent: int,
    took_seconds: float,
    tr: Translator,
    *,
    outside_window: int = 0,
    stopped_because: str | None = None,
) -> str:
    """The final report that replaces the progress message."""
    if outcome == "done":
        head = tr._("Broadcast #{id} finished.", id=broadcast_id)
    elif outcome == "cancelled":
        head = tr._("Broadcast #{id} was cancelled.", id=broadcast_id)
    else:
        head = tr._(
            "Broadcast #{id} stopped before the end; it resumes by itself when the bot "
            "starts again.",
            id=broadcast_id,
        )
    lines = [head]
    if stopped_because:
        # The platform's own words (e.g. a refused access token): what the operator must fix.
        lines.append(tr._("Sending stopped: {reason}", reason=stopped_because))
    lines.append(tr._("Recipients: {count}", count=total))
    lines += delivery_lines(sent, failed, blocked, skipped, tr, outside_window)
    if resent:
        lines.append(
            tr._("Sent again after a restart (may have arrived twice): {count}", count=resent)
        )
    lines.append(tr._("Took: {duration}", duration=duration_text(took_seconds, tr)))
    return "\n".join(lines)


def status_text(status: str, tr: Translator) -> str:
    if status == "running":
        return tr._("sending")
    if status == "cancelled":
        return tr._("cancelled")
    return tr._("finished")


def broadcast_line(
    broadcast_id: int,
    created_local: str,
    audience: Audience,
    status: str,
    total: int,
    sent: int,
    failed: int,
    blocked: int,
    tr: Translator,
    insurer: Insurer | None = None,
) -> str:
    """One line of /broadcasts."""
    return tr._(
        "#{id} · {when} · {audience} · {status}: sent {sent} of {total}, failed {failed}, "
        "blocked {blocked}",
        id=broadcast_id,
        when=created_local,
        audience=audience_text(audience, tr, insurer),
        status=status_text(status, tr),
        sent=sent,
        total=total,
        failed=failed,
        blocked=blocked,
    )


def broadcast_list_text(lines: list[str], tr: Translator) -> str:
    if not lines:
        return tr._("No broadcasts yet.")
    return "\n".join([tr._("Recent broadcasts:"), *lines])


def local_time_text(moment: datetime, zone: tzinfo) -> str:
    """'2026-11-25 09:00' in the operator's zone (digits read the same in both languages)."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
