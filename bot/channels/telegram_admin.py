"""Admins on Telegram: the /broadcast dialogue, and the progress message a broadcast edits.

Only private chats of ADMIN_IDS reach the dialogue; for anyone else /broadcast goes on to the
conversation, which answers it like any unknown command (nothing reveals that it exists).
The progress message is remembered with the broadcast ("<chat>:<message>:<locale>"), so a
broadcast resumed after a restart goes on editing the same message and ends it with the report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import Bot
from telegram.error import BadRequest, TelegramError

from bot.channels.telegram_render import Inbound, inline_keyboard, send_replies
from bot.conversation.events import ChatKind
from bot.conversation.replies import Keyboard
from bot.i18n import SUPPORTED, Translator, translator_for
from bot.reminders import admin_texts
from bot.reminders.admin import AdminDialogue
from bot.reminders.broadcast import BroadcastReport, progress_message
from bot.reminders.delivery import Progress, ProgressCallback
from bot.reminders.service import ReminderService
from bot.store.broadcasts import BroadcastSummary

log = logging.getLogger(__name__)


def progress_ref(chat_id: int, message_id: int, locale: str) -> str:
    return f"{chat_id}:{message_id}:{locale}"


def parse_progress_ref(ref: str | None) -> tuple[int, int, Translator] | None:
    parts = (ref or "").split(":")
    if len(parts) != 3 or parts[2] not in SUPPORTED:
        return None
    try:
        return int(parts[0]), int(parts[1]), translator_for(parts[2])
    except ValueError:
        return None


class TelegramAdmin:
    def __init__(
        self, service: ReminderService, dialogue: AdminDialogue, admin_ids: Iterable[int]
    ) -> None:
        self.service = service
        self.dialogue = dialogue
        self.admin_ids = frozenset(admin_ids)
        self.bot: Bot | None = None  # set at start-up; resumed broadcasts edit through it

    def is_admin(self, found: Inbound) -> bool:
        # In a private chat the chat id is the user's id.
        return found.event.chat_kind is ChatKind.PRIVATE and found.chat_id in self.admin_ids

    async def handle(self, bot: Bot, found: Inbound, tr: Translator) -> bool:
        """Answer an admin's action if it belongs to the broadcast dialogue."""
        answer = await self.dialogue.handle(str(found.chat_id), found.event.action, tr)
        if answer is None:
            return False
        await send_replies(bot, found.chat_id, answer.replies)
        if answer.start is not None:
            await self._start(bot, found.chat_id, *answer.start, tr)
        return True

    async def _start(
        self, bot: Bot, chat_id: int, broadcast_id: int, total: int, tr: Translator
    ) -> None:
        first = admin_texts.starting(tr, broadcast_id, total)
        ref = None
        try:
            sent = await bot.send_message(
                chat_id, first.text, reply_markup=inline_keyboard(first.buttons)
            )
            ref = progress_ref(chat_id, sent.message_id, tr.locale)
            await self.service.broadcasts.set_progress_ref(broadcast_id, ref)
        except Exception:  # the broadcast matters more than its progress message
            log.warning("broadcast #%d: no progress message", broadcast_id, exc_info=True)
        finally:
            # Always started: a created broadcast is kept from the resume sweep until it is.
            self.service.start_broadcast(
                broadcast_id, self._progress(ref, broadcast_id), self.on_report
            )

    def _progress(self, ref: str | None, broadcast_id: int) -> ProgressCallback | None:
        where = parse_progress_ref(ref)
        if where is None:
            return None
        chat_id, message_id, tr = where
        buttons = admin_texts.halt_buttons(tr, broadcast_id)

        async def on_progress(progress: Progress) -> None:
            text = progress_message(broadcast_id, progress, tr)
            await self._edit(chat_id, message_id, text, buttons)

        return on_progress

    def progress_for(self, summary: BroadcastSummary) -> ProgressCallback | None:
        """For broadcasts resumed at start-up: the message their admin was watching."""
        return self._progress(summary.progress_ref, summary.id)

    async def on_report(self, report: BroadcastReport) -> None:
        where = parse_progress_ref(report.summary.progress_ref)
        if where is None:
            log.info("broadcast #%d: %s (no progress message)", report.summary.id, report.outcome)
            return
        chat_id, message_id, tr = where
        await self._edit(chat_id, message_id, report.text(tr), ())

    async def _edit(self, chat_id: int, message_id: int, text: str, buttons: Keyboard) -> None:
        if self.bot is None:
            return
        try:
            await self.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=inline_keyboard(buttons)
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("could not update a broadcast progress message: %s", exc.message)
        except TelegramError as exc:  # progress is a courtesy: never stop a broadcast for it
            log.warning("could not update a broadcast progress message: %s", exc)
