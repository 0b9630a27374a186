"""The conversation: (state, event) -> (new state, replies).

No channel and no storage here: the engine asks for policies, captcha images and the audit log
through the small protocols below, so Telegram, the web chat and tests drive the same flow.

The flow, step by step (anything else gets "what I am waiting for" at that step):

    START     path button        -> ENTER_ID   ask for the number
    START     a valid number      -> CAPTCHA    (the path is inferred from the number)
    ENTER_ID  valid number        -> CAPTCHA    image code
    ENTER_ID  other path's number -> ENTER_ID   offer the switch button
    ENTER_ID  switch button       -> CAPTCHA    for the number just sent
    ENTER_ID  3rd invalid number  -> START
    CAPTCHA   right code          -> RESULT     result card, audit record
    CAPTCHA   wrong code          -> CAPTCHA    (3rd wrong: new image; 5th in a row: cool-down)
    CAPTCHA   expired code        -> CAPTCHA    new image
    CAPTCHA   new code button     -> CAPTCHA    new image
    CAPTCHA   audio code button   -> CAPTCHA    a new code, spoken (replacements stay spoken)
    any code issued or lookup completed first passes the limits (bot/limits.py)
    RESULT    new lookup / text   -> START
    any       /start, new lookup  -> START      · /cancel -> START · /help · /language
    any       idle 10 minutes     -> START      with a note
    any       reminder buttons, /reminders, /stop, «إيقاف»  (consent.py; step unchanged)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.captcha import answer_matches, code_digest, new_code
from bot.conversation import consent_texts, texts
from bot.conversation.card import result_card
from bot.conversation.consent import ChatReminders, ReminderConsent
from bot.conversation.events import Button, ChatKind, Command, Event, Other, OtherKind, Text
from bot.conversation.replies import Message, Photo, Reply, Voice
from bot.conversation.state import Challenge, Conversation, PendingIdentity, Step
from bot.domain.identity import (
    IdentityNumber,
    IdProblem,
    InvalidIdentity,
    Path,
    id_hmac,
    normalize_digits,
    parse_identity,
    path_of,
)
from bot.domain.policy import Policy, coverage_for, today_in
from bot.i18n import SUPPORTED, Translator, pick_locale, translator_for
from bot.limits import Limits, Refusal, Requester

MAX_TEXT = 200  # longer messages are not a number or a code


class PolicyLookup(Protocol):
    async def policies_for_hmac(self, id_hash: bytes) -> list[Policy]: ...


class CaptchaImages(Protocol):
    async def render(self, code: str) -> bytes: ...

    async def render_audio(self, code: str, locale: str) -> bytes: ...


class LookupAudit(Protocol):
    async def record(self, chat_ref: str, id_hash: bytes, outcome: str) -> None: ...


@dataclass(frozen=True)
class EngineConfig:
    default_locale: str = "ar"
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Riyadh"))
    soon_days: int = 30
    captcha_ttl: float = 120
    captcha_test_code: str = ""
    lookups_per_hour: int = 10
    idle_timeout: float = 600
    cooldown: float = 600
    failed_codes_limit: int = 5  # in a row, then the cool-down
    wrong_per_image: int = 3
    invalid_ids_limit: int = 3


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        hash_key: bytes,
        policies: PolicyLookup,
        captcha: CaptchaImages,
        audit: LookupAudit,
        limits: Limits,
        clock: Callable[[], float] = time.time,
        consent: ReminderConsent | None = None,
    ) -> None:
        """`consent`: expiry reminders, for channels that can message a person later."""
        self.config = config
        self.hash_key = hash_key
        self.policies = policies
        self.captcha = captcha
        self.audit = audit
        self.limits = limits
        self.clock = clock
        self.consent = consent

    async def handle(
        self, conv: Conversation, event: Event, chat_ref: str, chat_id: str | None = None
    ) -> list[Reply]:
        """Apply one event to `conv` (changed in place) and return the replies.

        `chat_ref` identifies the chat in the audit log (already pseudonymised by the caller);
        `chat_id` is the channel's own chat id, which reminder subscriptions need.
        """
        now = self.clock()
        tr = self._translator(conv, event)
        who = Requester(chat_ref, event.network)
        reminders = None
        if self.consent is not None and chat_id is not None:
            today = today_in(self.config.timezone, datetime.fromtimestamp(now, UTC))
            reminders = ChatReminders(self.consent, chat_id, today)
        if event.chat_kind is not ChatKind.PRIVATE:
            # Coverage data never goes to a group; say so once, then stay quiet there.
            if conv.group_notice_sent:
                return []
            conv.group_notice_sent = True
            return [texts.private_only(tr)]

        replies: list[Reply] = []
        first_contact = not conv.last_seen
        idle = conv.last_seen and now - conv.last_seen > self.config.idle_timeout
        conv.last_seen = now
        if idle and conv.step is not Step.START:
            conv.restart()
            # A stop button on a days-old reminder is not a lookup that timed out: no note.
            if reminders is None or not reminders.handles(event.action):
                replies.append(texts.session_expired(tr))
                if not isinstance(event.action, Command):
                    return [*replies, texts.greeting(tr)]

        match event.action:
            case Command(name=name):
                replies += await self._command(conv, name, tr, reminders)
            case Button(data=data):
                replies += await self._button(conv, data, tr, now, who, reminders)
            case Text(text=text) if reminders and consent_texts.is_stop_word(text):
                replies += [await reminders.stop_all(tr), *self._prompt_mid_lookup(conv, tr)]
            case Text(text=text) if first_contact and conv.step is Step.START:
                replies += await self._text(conv, text, tr, now, who, reminders, greet=True)
            case Text(text=text):
                replies += await self._text(conv, text, tr, now, who, reminders)
            case Other(kind=kind):
                first = (
                    texts.edited_ignored(tr) if kind is OtherKind.EDITED else texts.only_text(tr)
                )
                replies += [first, self._prompt(conv, tr)]
        return replies

    # -- language -------------------------------------------------------------------------

    def _translator(self, conv: Conversation, event: Event) -> Translator:
        return translator_for(
            pick_locale(conv.locale, event.platform_language, self.config.default_locale)
        )

    def _prompt(self, conv: Conversation, tr: Translator) -> Message:
        """What the bot is waiting for at this step."""
        match conv.step:
            case Step.START:
                return texts.choose_path(tr)
            case Step.ENTER_ID:
                assert conv.path is not None
                return texts.ask_number(tr, conv.path)
            case Step.CAPTCHA:
                return texts.waiting_for_captcha(tr)
            case Step.RESULT:
                return texts.after_result(tr)

    def _prompt_mid_lookup(self, conv: Conversation, tr: Translator) -> list[Reply]:
        """After a side answer (/reminders, /stop), what the lookup still waits for."""
        return [self._prompt(conv, tr)] if conv.step in (Step.ENTER_ID, Step.CAPTCHA) else []

    async def _switch_language(
        self, conv: Conversation, tr: Translator, locale: str, reminders: ChatReminders | None
    ) -> list[Reply]:
        conv.locale = locale
        if reminders is not None:
            await reminders.language(locale)
        tr = translator_for(locale)
        prompt = texts.greeting(tr) if conv.step is Step.START else self._prompt(conv, tr)
        return [texts.language_changed(tr), prompt]

    # -- commands and buttons -------------------------------------------------------------

    async def _command(
        self, conv: Conversation, name: str, tr: Translator, reminders: ChatReminders | None
    ) -> list[Reply]:
        match name:
            case "start":
                conv.restart()
                return [texts.greeting(tr)]
            case "cancel":
                conv.restart()
                return [texts.cancelled(tr)]
            case "help":
                help_text = texts.help_text(tr)
                if reminders is not None:
                    more = help_text.text + "\n" + consent_texts.help_reminders(tr)
                    help_text = dataclasses.replace(help_text, text=more)
                return [help_text, self._prompt(conv, tr)]
            case "language":
                other = next(lang for lang in SUPPORTED if lang != tr.locale)
                return await self._switch_language(conv, tr, other, reminders)
            case "reminders" if reminders is not None:
                return [await reminders.listing(tr), *self._prompt_mid_lookup(conv, tr)]
            case "stop" if reminders is not None:
                return [await reminders.stop_all(tr), *self._prompt_mid_lookup(conv, tr)]
            case _:
                return [texts.unknown_command(tr), self._prompt(conv, tr)]

    async def _button(
        self,
        conv: Conversation,
        data: str,
        tr: Translator,
        now: float,
        who: Requester,
        reminders: ChatReminders | None,
    ) -> list[Reply]:
        if data.startswith(texts.LANG_PREFIX) and data[len(texts.LANG_PREFIX) :] in SUPPORTED:
            return await self._switch_language(conv, tr, data[len(texts.LANG_PREFIX) :], reminders)
        if reminders is not None:
            answer = await reminders.button(conv, data, tr)
            if answer is not None:
                return [answer, *self._prompt_mid_lookup(conv, tr)]
        if data == texts.NEW_LOOKUP:
            conv.restart()
            return [texts.greeting(tr)]
        if data == texts.ABOUT:
            return (
                [texts.about(tr)]
                if conv.step is Step.START
                else [texts.about(tr), self._prompt(conv, tr)]
            )
        path = _path_after(data, texts.PATH_PREFIX)
        if path is not None:
            conv.restart()
            conv.step, conv.path = Step.ENTER_ID, path
            return [texts.ask_number(tr, path)]
        path = _path_after(data, texts.SWITCH_PREFIX)
        pending = conv.identity
        if (
            path is not None
            and conv.step is Step.ENTER_ID
            and pending is not None
            and path_of(pending.kind) is path
        ):
            conv.path = path
            return await self._start_challenge(conv, tr, now, who)
        if data in (texts.NEW_CODE, texts.AUDIO_CODE) and conv.step is Step.CAPTCHA:
            if now < conv.cooldown_until:
                return [texts.cooldown(tr, conv.cooldown_until - now)]
            audio = data == texts.AUDIO_CODE
            caption = texts.captcha_caption if audio else texts.new_code_caption
            return [await self._new_code(conv, tr, now, who, caption, audio=audio)]
        # A button from an old message, or data nobody of ours sent.
        return [texts.stale_button(tr), self._prompt(conv, tr)]

    # -- text -----------------------------------------------------------------------------

    async def _text(
        self,
        conv: Conversation,
        text: str,
        tr: Translator,
        now: float,
        who: Requester,
        reminders: ChatReminders | None,
        greet: bool = False,
    ) -> list[Reply]:
        if len(text) > MAX_TEXT:
            return [texts.text_too_long(tr), self._prompt(conv, tr)]
        match conv.step:
            case Step.ENTER_ID:
                return await self._submit_number(conv, text, tr, now, who)
            case Step.CAPTCHA:
                return await self._submit_code(conv, text, tr, now, who, reminders)
            case Step.START | Step.RESULT:
                # A valid number sent straight away: no need to ask which kind it is.
                try:
                    identity = parse_identity(text)
                except InvalidIdentity:
                    conv.restart()
                    return [texts.greeting(tr) if greet else texts.choose_path(tr)]
                conv.restart()
                conv.step, conv.path = Step.ENTER_ID, identity.path
                return await self._accept_number(conv, identity, tr, now, who)

    async def _submit_number(
        self, conv: Conversation, text: str, tr: Translator, now: float, who: Requester
    ) -> list[Reply]:
        assert conv.path is not None
        try:
            identity = parse_identity(text, conv.path)
        except InvalidIdentity as problem:
            if problem.problem is IdProblem.WRONG_PATH and problem.belongs_to is not None:
                # Keep it (hashed) so the switch button can go straight to the code.
                conv.identity = _pending(parse_identity(text), self.hash_key)
                return [texts.wrong_path(tr, problem.belongs_to)]
            conv.invalid_ids += 1
            reason = texts.invalid_number(tr, problem, conv.path)
            if conv.invalid_ids >= self.config.invalid_ids_limit:
                conv.restart()
                return [reason, texts.too_many_invalid(tr), texts.greeting(tr)]
            return [reason]
        return await self._accept_number(conv, identity, tr, now, who)

    async def _accept_number(
        self,
        conv: Conversation,
        identity: IdentityNumber,
        tr: Translator,
        now: float,
        who: Requester,
    ) -> list[Reply]:
        conv.invalid_ids = 0
        conv.identity = _pending(identity, self.hash_key)
        return await self._start_challenge(conv, tr, now, who)

    async def _start_challenge(
        self, conv: Conversation, tr: Translator, now: float, who: Requester
    ) -> list[Reply]:
        """Issue an image code for the pending number, unless a limit says wait."""
        if now < conv.cooldown_until:
            return [texts.cooldown(tr, conv.cooldown_until - now)]
        recent = conv.recent_lookups(now)
        if len(recent) >= self.config.lookups_per_hour:
            conv.restart()
            conv.step = Step.RESULT
            return [texts.lookup_limit(tr, self.config.lookups_per_hour, recent[0] + 3600 - now)]
        conv.step = Step.CAPTCHA
        return [await self._new_code(conv, tr, now, who, texts.captcha_caption)]

    def _refuse(self, conv: Conversation, tr: Translator, refusal: Refusal) -> list[Reply]:
        conv.restart()
        conv.step = Step.RESULT
        return [texts.refused(tr, refusal)]

    async def _new_code(
        self,
        conv: Conversation,
        tr: Translator,
        now: float,
        who: Requester,
        caption: Callable[[Translator, str, bool], str],
        *,
        audio: bool = False,
    ) -> Reply:
        """A new code for the pending number, shown or spoken; a limit may say wait instead."""
        assert conv.identity is not None
        refusal = await self.limits.challenge(who, bytes.fromhex(conv.identity.id_hmac), now)
        if refusal is not None:
            return self._refuse(conv, tr, refusal)[0]
        code = new_code(self.config.captcha_test_code)
        conv.challenge = Challenge(
            code_hmac=code_digest(self.hash_key, code), issued_at=now, audio=audio
        )
        text, buttons = caption(tr, conv.identity.masked, audio), texts.new_code_buttons(tr)
        if audio:
            ogg = await self.captcha.render_audio(code, tr.locale)
            return Voice(ogg, text, buttons, rtl=tr.locale == "ar", label=texts.audio_label(tr))
        png = await self.captcha.render(code)
        return Photo(png, text, buttons, rtl=tr.locale == "ar", alt=texts.image_alt(tr))

    async def _submit_code(
        self,
        conv: Conversation,
        text: str,
        tr: Translator,
        now: float,
        who: Requester,
        reminders: ChatReminders | None,
    ) -> list[Reply]:
        challenge, pending = conv.challenge, conv.identity
        assert challenge is not None and pending is not None
        if now < conv.cooldown_until:
            return [texts.cooldown(tr, conv.cooldown_until - now)]
        if now - challenge.issued_at > self.config.captcha_ttl:
            caption = texts.code_expired_caption
            return [await self._new_code(conv, tr, now, who, caption, audio=challenge.audio)]
        typed = normalize_digits(text)
        if len(typed) != 6 or not (typed.isascii() and typed.isdecimal()):
            # Not an attempt: nothing that could be the code.
            return [texts.code_format(tr, audio=challenge.audio)]
        if answer_matches(self.hash_key, challenge.code_hmac, typed):
            conv.challenge = None  # single use
            conv.failed_codes = 0
            refusal = await self.limits.look_up(who, bytes.fromhex(pending.id_hmac), now)
            if refusal is not None:
                return self._refuse(conv, tr, refusal)
            return await self._lookup(conv, pending, tr, now, who.chat_ref, reminders)
        challenge.wrong += 1
        conv.failed_codes += 1
        if conv.failed_codes >= self.config.failed_codes_limit:
            conv.cooldown_until = now + self.config.cooldown
            conv.failed_codes = 0
            conv.restart()
            return [texts.cooldown(tr, self.config.cooldown)]
        if challenge.wrong >= self.config.wrong_per_image:
            caption = texts.too_many_wrong_caption
            return [await self._new_code(conv, tr, now, who, caption, audio=challenge.audio)]
        tries_left = self.config.wrong_per_image - challenge.wrong
        return [texts.wrong_code(tr, tries_left, audio=challenge.audio)]

    async def _lookup(
        self,
        conv: Conversation,
        pending: PendingIdentity,
        tr: Translator,
        now: float,
        chat_ref: str,
        reminders: ChatReminders | None,
    ) -> list[Reply]:
        id_hash = bytes.fromhex(pending.id_hmac)
        policies = await self.policies.policies_for_hmac(id_hash)
        today = today_in(self.config.timezone, datetime.fromtimestamp(now, UTC))
        coverages = coverage_for(policies, today, self.config.soon_days)
        conv.lookups.append(now)
        conv.identity = None
        conv.step = Step.RESULT
        outcome = coverages[0].state.value if coverages else "not_found"
        await self.audit.record(chat_ref, id_hash, outcome)
        card = result_card(tr, pending.masked, coverages)
        offer = reminders.offer(conv, pending, coverages, tr) if reminders else None
        if offer is not None:
            card = dataclasses.replace(card, buttons=((offer,), *card.buttons))
        return [card]


def _path_after(data: str, prefix: str) -> Path | None:
    if not data.startswith(prefix):
        return None
    try:
        return Path(data[len(prefix) :])
    except ValueError:
        return None


def _pending(identity: IdentityNumber, key: bytes) -> PendingIdentity:
    return PendingIdentity(
        id_hmac=id_hmac(key, identity.digits).hex(), masked=identity.masked, kind=identity.kind
    )
