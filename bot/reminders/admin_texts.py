"""What the admin's /broadcast dialogue says.

Message ids are English; text lives in bot/locales/.
"""

from __future__ import annotations

from bot.conversation.buttons import (
    BroadcastAudience,
    BroadcastCancel,
    BroadcastChannel,
    BroadcastHalt,
    BroadcastInsurers,
    BroadcastSend,
    BroadcastTemplate,
    encode,
)
from bot.conversation.replies import ButtonSpec, Keyboard, Message, fit_label
from bot.domain.audience import Audience, ChannelChoice
from bot.domain.policy import Insurer
from bot.i18n import Translator
from bot.reminders.texts import audience_text

# The dialogue's buttons (bot/conversation/buttons.py); only admins' taps reach it.
_ALL = encode(BroadcastAudience("all"))
_INSURERS = encode(BroadcastInsurers())
_TEMPLATE = encode(BroadcastTemplate())
_SEND = encode(BroadcastSend())
_CANCEL = encode(BroadcastCancel())


def _message(tr: Translator, text: str, buttons: Keyboard = ()) -> Message:
    return Message(text, buttons, rtl=tr.locale == "ar")


def plain(tr: Translator, text: str) -> Message:
    return _message(tr, text)


def _cancel_row(tr: Translator) -> tuple[ButtonSpec, ...]:
    return (ButtonSpec(tr._("Cancel"), _CANCEL),)


def channel_name(tr: Translator, choice: ChannelChoice) -> str:
    if choice is ChannelChoice.TELEGRAM:
        return tr._("Telegram")
    if choice is ChannelChoice.WHATSAPP:
        return tr._("WhatsApp")
    return tr._("All channels")


def choose_channel(tr: Translator) -> Message:
    rows = ((ChannelChoice.TELEGRAM, ChannelChoice.WHATSAPP), (ChannelChoice.ALL,))
    buttons: Keyboard = (
        *(
            tuple(
                ButtonSpec(channel_name(tr, choice), encode(BroadcastChannel(choice.value)))
                for choice in row
            )
            for row in rows
        ),
        _cancel_row(tr),
    )
    return _message(tr, tr._("New broadcast. On which channel?"), buttons)


def choose_audience(tr: Translator, subscribers: int) -> Message:
    buttons: Keyboard = (
        (ButtonSpec(tr._("All subscribers"), _ALL),),
        (
            ButtonSpec(tr._("Expiring in 30 days"), encode(BroadcastAudience("expiring:30"))),
            ButtonSpec(tr._("Expiring in 7 days"), encode(BroadcastAudience("expiring:7"))),
        ),
        (
            ButtonSpec(tr._("Already expired"), encode(BroadcastAudience("expired"))),
            ButtonSpec(tr._("By insurer"), _INSURERS),
        ),
        _cancel_row(tr),
    )
    text = "\n".join(
        [
            tr._("New broadcast. Who should receive it?"),
            tr.ngettext(
                "There is {n} active subscription now.",
                "There are {n} active subscriptions now.",
                subscribers,
            ),
        ]
    )
    return _message(tr, text, buttons)


def choose_insurer(tr: Translator, insurers: list[Insurer]) -> Message:
    if not insurers:
        return _message(
            tr,
            tr._("No subscriber has a policy with any insurer at the moment. Choose again:"),
            (
                (ButtonSpec(tr._("All subscribers"), _ALL),),
                _cancel_row(tr),
            ),
        )
    rows = [
        tuple(
            # Names are data and may be long: the button shows what fits, the next message
            # the whole name.
            ButtonSpec(fit_label(i.name(tr.locale)), encode(BroadcastAudience(f"insurer:{i.code}")))
            for i in pair
        )
        for pair in (insurers[k : k + 2] for k in range(0, len(insurers), 2))
    ]
    return _message(tr, tr._("Subscribers insured with which company?"), (*rows, _cancel_row(tr)))


def choose_content(tr: Translator, audience: Audience, insurer: Insurer | None) -> Message:
    return _message(
        tr,
        tr._(
            "Audience: {audience}.\n\nWhat should they receive? Tap the built-in reminder "
            "(each person gets their own number, insurer and expiry date), or type your "
            "message now and send it.",
            audience=audience_text(audience, tr, insurer),
        ),
        ((ButtonSpec(tr._("Built-in reminder"), _TEMPLATE),), _cancel_row(tr)),
    )


def preview_head(tr: Translator) -> Message:
    return _message(tr, tr._("Preview: this is exactly what a recipient will see:"))


def confirm(
    tr: Translator,
    audience: Audience,
    insurer: Insurer | None,
    count: int,
    *,
    channel: ChannelChoice | None = None,
    windowed: bool = False,
) -> Message:
    """`channel`: named when there was a choice; `windowed`: a typed text that WhatsApp's
    24-hour window will keep from some of them."""
    lines = [tr._("Audience: {audience}.", audience=audience_text(audience, tr, insurer))]
    if channel is not None:
        lines.append(tr._("Channel: {channel}.", channel=channel_name(tr, channel)))
    if windowed:
        lines.append(
            tr._(
                "On WhatsApp, a typed message reaches only those who wrote to the bot in the "
                "last 24 hours; the others are counted apart in the report, not as failed."
            )
        )
    lines.append(
        tr.ngettext(
            "It goes to {n} recipient. Send it?",
            "It goes to {n} recipients. Send it?",
            count,
        )
    )
    text = "\n".join(lines)
    return _message(
        tr, text, ((ButtonSpec(tr._("Send"), _SEND), ButtonSpec(tr._("Cancel"), _CANCEL)),)
    )


def nobody(tr: Translator, audience: Audience, insurer: Insurer | None) -> Message:
    return _message(
        tr,
        tr._(
            "Nobody is in this audience right now ({audience}); nothing was sent. "
            "Send /broadcast to start again.",
            audience=audience_text(audience, tr, insurer),
        ),
    )


def bad_text(tr: Translator, utf16_length: int, limit: int) -> Message:
    if utf16_length == 0:
        return _message(tr, tr._("The message is empty. Type the text to send, or tap Cancel."))
    return _message(
        tr,
        tr.ngettext(
            "The message has {n} character; Telegram allows {limit}. Shorten it and send it again.",
            "The message has {n} characters; Telegram allows {limit}. "
            "Shorten it and send it again.",
            utf16_length,
            limit=limit,
        ),
    )


def waiting_for(tr: Translator) -> Message:
    return _message(
        tr, tr._("Please use the buttons above, or send /cancel to drop this broadcast.")
    )


def cancelled(tr: Translator) -> Message:
    return _message(tr, tr._("Broadcast cancelled; nothing was sent."))


def stale(tr: Translator) -> Message:
    return _message(tr, tr._("That broadcast draft is over. Send /broadcast to start a new one."))


def starting(tr: Translator, broadcast_id: int, count: int) -> Message:
    return _message(
        tr,
        tr.ngettext(
            "Broadcast #{id}: sending to {n} recipient…",
            "Broadcast #{id}: sending to {n} recipients…",
            count,
            id=broadcast_id,
        ),
        halt_buttons(tr, broadcast_id),
    )


def halt_buttons(tr: Translator, broadcast_id: int) -> Keyboard:
    return ((ButtonSpec(tr._("Stop sending"), encode(BroadcastHalt(broadcast_id))),),)


def halting(tr: Translator, broadcast_id: int) -> Message:
    return _message(
        tr,
        tr._(
            "Stopping broadcast #{id}; whoever has not received it yet will not get it.",
            id=broadcast_id,
        ),
    )


def not_running(tr: Translator, broadcast_id: int) -> Message:
    return _message(tr, tr._("Broadcast #{id} is not running.", id=broadcast_id))
