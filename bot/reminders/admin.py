"""The admin's broadcast dialogue, channel-neutral (Telegram's adapter sends and edits).

    /broadcast            -> with more than one channel delivering: which channel (Telegram,
                             WhatsApp, all); then audience buttons (all, expiring 30/7 days,
                             expired, by insurer)
    audience              -> content: the built-in reminder button, or the admin types a text
    content               -> preview (exactly what a recipient sees) + count, «Send» / «Cancel»
    «Send»                -> the broadcast is recorded; the adapter starts it with a progress
                             message it edits, which ends as the report
    /broadcasts           -> recent broadcasts with their counts
    «Stop sending»        -> cancel a running broadcast
    /cancel, «Cancel»     -> drop the draft

The draft is kept in SQLite (like a conversation), so a restart mid-dialogue loses nothing.
Anyone not in ADMIN_IDS never reaches this module: the adapter checks first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ValidationError

from bot.conversation.buttons import (
    BroadcastAudience,
    BroadcastButton,
    BroadcastCancel,
    BroadcastChannel,
    BroadcastHalt,
    BroadcastInsurers,
    BroadcastSend,
    BroadcastTemplate,
    decode,
)
from bot.conversation.events import Action, Button, Command, Text
from bot.conversation.replies import Reply
from bot.domain.audience import (
    MAX_TEXT_UTF16,
    Audience,
    AudienceKind,
    BadAudience,
    BadContent,
    ChannelChoice,
    Content,
)
from bot.domain.policy import Insurer
from bot.i18n import Translator
from bot.reminders import admin_texts as texts
from bot.reminders.broadcast import EmptyAudience, UnknownInsurer, broadcasts_text
from bot.reminders.service import ReminderService
from bot.store.conversations import ConversationStore
from bot.store.database import Database
from bot.store.insurers import all_insurers

log = logging.getLogger(__name__)

DRAFT_TTL = 30 * 60.0  # an untouched draft older than this is dropped
COMMANDS = frozenset({"broadcast", "broadcasts"})


class DraftStep(StrEnum):
    CHANNEL = "channel"
    AUDIENCE = "audience"
    CONTENT = "content"
    CONFIRM = "confirm"


class Draft(BaseModel):
    step: DraftStep = DraftStep.AUDIENCE
    channel: ChannelChoice = ChannelChoice.ALL
    audience: str | None = None  # as Audience.parse reads it
    text: str | None = None  # the typed message; None with the built-in reminder
    touched_at: float = 0.0


@dataclass
class AdminAnswer:
    replies: list[Reply] = field(default_factory=list)
    # A confirmed broadcast the adapter must start: (id, recipients).
    start: tuple[int, int] | None = None


class Drafts:
    """One draft per admin chat, kept like a conversation under a channel name of its own."""

    def __init__(self, db: Database, channel: str) -> None:
        self.store = ConversationStore(db)
        self.key = f"admin:{channel}"

    async def load(self, chat_id: str, now: float) -> Draft | None:
        state = await self.store.load_json(self.key, chat_id)
        if state is None:
            return None
        try:
            draft = Draft.model_validate_json(state)
        except ValidationError:
            return None
        return draft if now - draft.touched_at < DRAFT_TTL else None

    async def save(self, chat_id: str, draft: Draft, now: float) -> None:
        draft.touched_at = now
        await self.store.save_json(self.key, chat_id, draft.model_dump_json())

    async def drop(self, chat_id: str) -> None:
        await self.store.delete(self.key, chat_id)


class AdminDialogue:
    def __init__(self, service: ReminderService, db: Database, channel: str) -> None:
        self.service = service
        self.db = db
        self.channel = channel
        self.drafts = Drafts(db, channel)

    async def handle(self, chat_id: str, action: Action, tr: Translator) -> AdminAnswer | None:
        """The admin's action, if it belongs to this dialogue; None lets the conversation
        have it (any other command also drops a draft, as /start would)."""
        now = time.time()
        draft = await self.drafts.load(chat_id, now)
        button = decode(action.data) if isinstance(action, Button) else None
        if isinstance(button, BroadcastHalt):
            return await self._halt(button.broadcast_id, tr)
        if isinstance(button, BroadcastButton):
            if draft is None:
                return AdminAnswer([texts.stale(tr)])
            return await self._button(chat_id, draft, button, tr, now)
        match action:
            case Command(name="broadcast"):
                return await self._start(chat_id, tr, now)
            case Command(name="broadcasts"):
                recent = await self.service.broadcasts.recent()
                insurers = {i.code: i for i in await all_insurers(self.db)}
                text = broadcasts_text(recent, tr, self.service.settings.app.tz, insurers)
                return AdminAnswer([texts.plain(tr, text)])
            case Command(name="cancel") if draft is not None:
                await self.drafts.drop(chat_id)
                return AdminAnswer([texts.cancelled(tr)])
            case Command():
                if draft is not None:
                    await self.drafts.drop(chat_id)
                return None
            case Text(text=text) if draft is not None:
                if draft.step is not DraftStep.CONTENT:
                    return AdminAnswer([texts.waiting_for(tr)])
                try:
                    content = Content.custom(text)
                except BadContent:
                    length = len(text.strip().encode("utf-16-le")) // 2
                    return AdminAnswer([texts.bad_text(tr, length, MAX_TEXT_UTF16)])
                draft.text = content.text
                return await self._preview(chat_id, draft, content, tr, now)
        return None

    async def _start(self, chat_id: str, tr: Translator, now: float) -> AdminAnswer:
        if len(self.service.broadcasts.channels()) > 1:
            await self.drafts.save(chat_id, Draft(step=DraftStep.CHANNEL), now)
            return AdminAnswer([texts.choose_channel(tr)])
        await self.drafts.save(chat_id, Draft(), now)
        return await self._audiences(Draft(), tr)

    async def _audiences(self, draft: Draft, tr: Translator) -> AdminAnswer:
        channels = self.service.broadcasts.channels(draft.channel)
        active = await self.service.subscriptions.count_active(channels)
        return AdminAnswer([texts.choose_audience(tr, active)])

    async def _button(
        self, chat_id: str, draft: Draft, button: BroadcastButton, tr: Translator, now: float
    ) -> AdminAnswer:
        step = draft.step
        if isinstance(button, BroadcastCancel):
            await self.drafts.drop(chat_id)
            return AdminAnswer([texts.cancelled(tr)])
        if isinstance(button, BroadcastChannel) and step is DraftStep.CHANNEL:
            try:
                draft.channel = ChannelChoice(button.channel)
            except ValueError:
                return AdminAnswer([texts.stale(tr)])
            draft.step = DraftStep.AUDIENCE
            await self.drafts.save(chat_id, draft, now)
            return await self._audiences(draft, tr)
        if isinstance(button, BroadcastInsurers) and step is DraftStep.AUDIENCE:
            insurers = await self.service.subscriptions.insurers_of_subscribers()
            return AdminAnswer([texts.choose_insurer(tr, insurers)])
        if isinstance(button, BroadcastAudience) and step is DraftStep.AUDIENCE:
            try:
                audience = Audience.parse(button.audience)
            except BadAudience:
                return AdminAnswer([texts.stale(tr)])
            draft.audience, draft.step = str(audience), DraftStep.CONTENT
            await self.drafts.save(chat_id, draft, now)
            insurer = await self._insurer(audience)
            return AdminAnswer([texts.choose_content(tr, audience, insurer)])
        if isinstance(button, BroadcastTemplate) and step is DraftStep.CONTENT:
            draft.text = None
            return await self._preview(chat_id, draft, Content.expiry_template(), tr, now)
        if isinstance(button, BroadcastSend) and step is DraftStep.CONFIRM:
            return await self._send(chat_id, draft, tr)
        return AdminAnswer([texts.waiting_for(tr)])

    async def _insurer(self, audience: Audience) -> Insurer | None:
        if audience.kind is not AudienceKind.INSURER:
            return None
        return next((i for i in await all_insurers(self.db) if i.code == audience.insurer), None)

    def _content(self, draft: Draft) -> Content:
        return Content.expiry_template() if draft.text is None else Content(text=draft.text)

    async def _preview(
        self, chat_id: str, draft: Draft, content: Content, tr: Translator, now: float
    ) -> AdminAnswer:
        assert draft.audience is not None
        audience = Audience.parse(draft.audience)
        insurer = await self._insurer(audience)
        try:
            preview = await self.service.broadcasts.preview(
                audience, content, channel=draft.channel
            )
        except UnknownInsurer:
            preview = None
        if preview is None or not preview.recipients or preview.sample is None:
            await self.drafts.drop(chat_id)
            return AdminAnswer([texts.nobody(tr, audience, insurer)])
        draft.step = DraftStep.CONFIRM
        await self.drafts.save(chat_id, draft, now)
        channels = self.service.broadcasts.channels(draft.channel)
        # Typed text on a channel with a window (WhatsApp): say so before «Send».
        windowed = content.text is not None and any(
            (pace := self.service.deliverer.pace(channel)) is not None and pace.window
            for channel in channels
        )
        several = len(self.service.broadcasts.channels()) > 1
        return AdminAnswer(
            [
                texts.preview_head(tr),
                preview.sample,
                texts.confirm(
                    tr,
                    audience,
                    insurer,
                    preview.recipients,
                    channel=draft.channel if several else None,
                    windowed=windowed,
                ),
            ]
        )

    async def _send(self, chat_id: str, draft: Draft, tr: Translator) -> AdminAnswer:
        assert draft.audience is not None
        audience = Audience.parse(draft.audience)
        # Dropped first: a second tap on «Send» (or a retry) must not send twice.
        await self.drafts.drop(chat_id)
        try:
            broadcast_id = await self.service.broadcasts.create(
                audience, self._content(draft), f"{self.channel}:{chat_id}", channel=draft.channel
            )
        except (EmptyAudience, UnknownInsurer):
            return AdminAnswer([texts.nobody(tr, audience, await self._insurer(audience))])
        summary = await self.service.broadcasts.get(broadcast_id)
        total = summary.total if summary is not None else 0
        return AdminAnswer([], start=(broadcast_id, total))

    async def _halt(self, broadcast_id: int, tr: Translator) -> AdminAnswer:
        if await self.service.broadcasts.cancel(broadcast_id):
            log.info("broadcast #%d cancelled by an admin", broadcast_id)
            return AdminAnswer([texts.halting(tr, broadcast_id)])
        return AdminAnswer([texts.not_running(tr, broadcast_id)])
