"""What the conversation says about reminders: the offer, the confirmation, the list, stopping.

The stop buttons are defined here and reused by `bot.reminders.texts` (the reminders themselves
carry the same buttons), so a tap on a reminder and a tap on the list are one path.
"""

from __future__ import annotations

from datetime import date, timedelta

from bot.conversation.buttons import RemindMe, StopAll, StopOne, encode
from bot.conversation.replies import ButtonSpec, Keyboard, Message
from bot.conversation.texts import new_lookup_buttons
from bot.domain.policy import Insurer
from bot.i18n import Translator, format_date

# Words that stop every reminder, as a person would type them (compared after casefold and
# with Arabic letter variants and tatweel removed: "ايقاف", "إيقـاف").
STOP_WORDS = frozenset({"ايقاف", "stop", "توقف", "اوقف"})


def _message(tr: Translator, text: str, buttons: Keyboard = ()) -> Message:
    return Message(text, buttons, rtl=tr.locale == "ar")


def is_stop_word(text: str) -> bool:
    word = text.strip().strip(".!؟?«»\"'").casefold().replace("\u0640", "")
    for variant, plain in (("إ", "ا"), ("أ", "ا"), ("آ", "ا")):
        word = word.replace(variant, plain)
    return word in STOP_WORDS


def remind_label(tr: Translator) -> str:
    return tr._("🔔 Remind me to renew")


def remind_button(tr: Translator, tag: str) -> ButtonSpec:
    return ButtonSpec(remind_label(tr), encode(RemindMe(tag)))


def stop_this_button(subscription_id: int, tr: Translator) -> ButtonSpec:
    return ButtonSpec(tr._("Stop these reminders"), encode(StopOne(subscription_id)))


def stop_all_button(tr: Translator) -> ButtonSpec:
    return ButtonSpec(tr._("Stop all reminders"), encode(StopAll()))


def _how_to_stop(tr: Translator) -> str:
    return tr._(
        "To stop, tap the button below, send /stop or the word «stop». "
        "/reminders lists your reminders."
    )


def subscribed(
    tr: Translator,
    subscription_id: int,
    masked: str,
    insurer: Insurer | None,
    expiry: date | None,
    thresholds: tuple[int, ...],
    today: date,
) -> Message:
    """The confirmation: for which number, which dates the reminders come, how to stop."""
    lines = [tr._("🔔 Reminders are on for number {masked}.", masked=masked)]
    if insurer is not None and expiry is not None:
        lines.append(
            tr._(
                "Its policy with {insurer} ends on {date}. I will write to you:",
                insurer=insurer.name(tr.locale),
                date=format_date(expiry, tr.locale),
            )
        )
        for days in thresholds:
            if expiry - timedelta(days=days) <= today:
                continue  # already reached: no message for it (see domain.schedule)
            if days:
                lines.append(
                    "• " + tr.ngettext("{n} day before it ends", "{n} days before it ends", days)
                )
            else:
                lines.append("• " + tr._("on the day it ends"))
        lines.append(
            tr._("If the policy is renewed, the reminders follow the new date by themselves.")
        )
    lines += ["", _how_to_stop(tr)]
    buttons = ((stop_this_button(subscription_id, tr),), *new_lookup_buttons(tr))
    return _message(tr, "\n".join(lines), buttons)


def already_subscribed(tr: Translator, subscription_id: int, masked: str) -> Message:
    text = tr._("Reminders for number {masked} are already on.", masked=masked)
    buttons = ((stop_this_button(subscription_id, tr),), *new_lookup_buttons(tr))
    return _message(tr, text + "\n\n" + _how_to_stop(tr), buttons)


def limit_reached(tr: Translator, limit: int) -> Message:
    return _message(
        tr,
        tr.ngettext(
            "This chat already gets reminders for {n} number, the most one chat can have. "
            "To add this one, first stop another: send /reminders.",
            "This chat already gets reminders for {n} numbers, the most one chat can have. "
            "To add this one, first stop another: send /reminders.",
            limit,
        ),
        new_lookup_buttons(tr),
    )


def subscription_line(
    tr: Translator, masked: str, insurer: Insurer | None, expiry: date | None, today: date
) -> str:
    if insurer is None or expiry is None:
        return "• " + tr._("{masked}: no valid policy at the moment", masked=masked)
    if expiry < today:
        return "• " + tr._(
            "{masked}: {insurer}, ended on {date}",
            masked=masked,
            insurer=insurer.name(tr.locale),
            date=format_date(expiry, tr.locale),
        )
    return "• " + tr._(
        "{masked}: {insurer}, ends on {date}",
        masked=masked,
        insurer=insurer.name(tr.locale),
        date=format_date(expiry, tr.locale),
    )


def reminder_list(tr: Translator, lines: list[str], stops: list[tuple[int, str]]) -> Message:
    """/reminders: one line and one stop button per subscription."""
    if not lines:
        return _message(
            tr,
            tr._(
                "You have no reminders. After a lookup that finds a valid policy, tap «{button}».",
                button=remind_label(tr),
            ),
        )
    head = tr.ngettext(
        "You get expiry reminders for {n} number:",
        "You get expiry reminders for {n} numbers:",
        len(lines),
    )
    buttons: Keyboard = tuple(
        (ButtonSpec(tr._("Stop {masked}", masked=masked), encode(StopOne(sid))),)
        for sid, masked in stops
    )
    if len(stops) > 1:
        buttons = (*buttons, (stop_all_button(tr),))
    return _message(tr, "\n".join([head, *lines]), buttons)


def stopped_one(tr: Translator, masked: str) -> Message:
    return _message(
        tr,
        tr._(
            "Reminders for number {masked} are stopped. You will get no more messages about it.",
            masked=masked,
        ),
    )


def already_stopped(tr: Translator) -> Message:
    return _message(tr, tr._("That reminder was already stopped."))


def stopped_all(tr: Translator, count: int) -> Message:
    if not count:
        return _message(tr, tr._("You have no active reminders, so there was nothing to stop."))
    return _message(
        tr,
        tr.ngettext(
            "Reminders stopped for {n} number. You will get no more reminders.",
            "Reminders stopped for {n} numbers. You will get no more reminders.",
            count,
        ),
    )


def help_reminders(tr: Translator) -> str:
    return tr._("Reminders: /reminders your reminders · /stop stop them all.")
