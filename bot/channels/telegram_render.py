"""Telegram updates -> conversation events, and replies -> Bot API calls.

Pure translation, no state: the adapter in ``telegram.py`` wires these to the conversation
service. Kept apart so the mapping can be read (and tested) on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from telegram import (
    Bot,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)
from telegram.ext import filters

from bot.conversation import replies
from bot.conversation.events import (
    Action,
    Button,
    ChatKind,
    Command,
    Event,
    Other,
    OtherKind,
    Text,
)


@dataclass(frozen=True, slots=True)
class Inbound:
    """What a person did, and where to answer."""

    chat_id: int
    event: Event


# Message content the bot cannot use, in the order it is recognised (a venue also carries a
# location, an animation also carries a document).
_CONTENT_KINDS: tuple[tuple[str, OtherKind], ...] = (
    ("sticker", OtherKind.STICKER),
    ("photo", OtherKind.PHOTO),
    ("voice", OtherKind.VOICE),
    ("audio", OtherKind.AUDIO),
    ("animation", OtherKind.VIDEO),
    ("video", OtherKind.VIDEO),
    ("video_note", OtherKind.VIDEO),
    ("venue", OtherKind.LOCATION),
    ("location", OtherKind.LOCATION),
    ("contact", OtherKind.CONTACT),
    ("document", OtherKind.DOCUMENT),
    ("poll", OtherKind.UNKNOWN),
    ("dice", OtherKind.UNKNOWN),
)


def chat_kind(chat: Chat) -> ChatKind:
    return ChatKind.PRIVATE if chat.type == Chat.PRIVATE else ChatKind.GROUP


def _command_entity(message: Message) -> MessageEntity | None:
    """The bot_command entity a command message starts with (plain "/text" has none)."""
    return next(
        (e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0),
        None,
    )


def _command(
    message: Message, entity: MessageEntity, text: str, bot_username: str | None
) -> Command | None:
    """`/Start@this_bot args` -> Command("start", "args"); None when addressed to another bot."""
    word = message.parse_entity(entity)
    name, _, addressee = word[1:].partition("@")
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None
    return Command(name.lower(), text[len(word) :].strip())


def _message_action(update: Update, message: Message, bot_username: str | None) -> Action | None:
    text = message.text
    if text is not None:
        entity = _command_entity(message) if text.startswith("/") else None
        if entity is not None:
            return _command(message, entity, text, bot_username)
        return Text(text)
    for attribute, kind in _CONTENT_KINDS:
        if getattr(message, attribute, None):
            return Other(kind)
    if filters.StatusUpdate.ALL.check_update(update):
        return None  # service messages: joins, pins, title changes, ...
    return Other(OtherKind.UNKNOWN)  # stories, games, invoices, whatever comes next


def inbound(update: Update, bot_username: str | None = None) -> Inbound | None:
    """The event an update means, or None when the bot has nothing to say to it."""
    user = update.effective_user
    language = user.language_code if user is not None else None
    action: Action | None
    if update.message is not None:
        chat = update.message.chat
        action = _message_action(update, update.message, bot_username)
    elif update.edited_message is not None:
        chat = update.edited_message.chat
        action = Other(OtherKind.EDITED)
    elif update.callback_query is not None:
        query_message = update.callback_query.message
        if query_message is None:  # a button under an inline-mode message: no chat to answer
            return None
        chat = query_message.chat
        action = Button(update.callback_query.data or "")
    else:
        return None  # membership changes, channel posts, polls...: nothing to answer
    if action is None:
        return None
    return Inbound(chat.id, Event(action, chat_kind(chat), language))


@lru_cache(maxsize=512)
def inline_keyboard(buttons: replies.Keyboard) -> InlineKeyboardMarkup | None:
    """Keyboards repeat (a few per language): built once, shared (PTB objects are frozen)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons]
    )


async def send_replies(bot: Bot, chat_id: int, answer: Sequence[replies.Reply]) -> None:
    """Send in order, each after the previous one was accepted. Plain text: no parse_mode,
    so nothing a person or an operator typed can turn into formatting."""
    for reply in answer:
        markup = inline_keyboard(reply.buttons)
        if isinstance(reply, replies.Photo):
            await bot.send_photo(
                chat_id, photo=reply.png, caption=reply.caption or None, reply_markup=markup
            )
        elif isinstance(reply, replies.Voice):
            await bot.send_voice(
                chat_id, voice=reply.ogg, caption=reply.caption or None, reply_markup=markup
            )
        else:
            await bot.send_message(chat_id, reply.text, reply_markup=markup)
