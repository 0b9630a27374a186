"""The conversation: (state, event) -> (new state, replies).

No channel and no storage here: the engine asks for policies, captcha images and the audit log
through the small protocols below, so Telegram, the web chat and tests drive the same flow.

The flow is the table at the end of this module (FLOW, EVERY_STEP, REMINDERS): at each step,
which handler answers which kind of event. Before the table: a group chat gets one notice and
then silence; after 10 idle minutes a lookup starts over, with a note. Every code issued and
every lookup first passes the limits (bot/limits.py). Each handler gets the turn's context
(`Turn`) and the event's value: the decoded button (bot/conversation/buttons.py), the command
or the message.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.captcha import answer_matches, code_digest, new_code
from bot.conversation import consent_texts, texts
from bot.conversation.buttons import (
    About,
    AudioCode,
    ChoosePath,
    NewCode,
    NewLookup,
    RemindMe,
    SetLanguage,
    StopAll,
    StopOne,
    SwitchPath,
    decode,
)
from bot.conversation.card import result_card
from bot.conversation.consent import ChatReminders, ReminderConsent
from bot.conversation.events import Action, Button, ChatKind, Command, Event, Other, OtherKind, Text
from bot.conversation.replies import Message, Photo, Reply, Voice
from bot.conversation.state import Challenge, Conversation, PendingIdentity, Step
from bot.domain.identity import (
    IdentityNumber,
    IdProblem,
    InvalidIdentity,
    id_hmac,
    normalize_digits,
    parse_identity,
    path_of,
)
from bot.domain.policy import (
    BeneficiaryType,
    Coverage,
    Policy,
    coverage_for,
    coverage_of,
    today_in,
)
from bot.i18n import SUPPORTED, Translator, pick_locale, translator_for
from bot.limits import Limits, Refusal, Requester

MAX_TEXT = 200  # longer messages are not a number or a code


class PolicyLookup(Protocol):
    async def policies_for_hmac(self, id_hash: bytes) -> list[Policy]: ...

    async def dependents_of(self, id_hash: bytes, policy: Policy) -> list[Policy]:
        """The dependents on `policy` when `id_hash` is its principal and it is one family's
        (bot.store.policies.PolicyStore.dependents_of); else none."""
        ...


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


@dataclass(frozen=True, slots=True)
class Turn:
    """One event's context, handed to every handler: the chat's state (changed in place),
    the language to answer in, the clock, who asks (for the limits), and the chat's
    reminders where the channel can write later (None elsewhere)."""

    conv: Conversation
    tr: Translator
    now: float
    who: Requester
    reminders: ChatReminders | None
    first_contact: bool  # the chat's very first event: a greeting comes with the answer


# Kinds of message the table tells apart besides Text and Other.
@dataclass(frozen=True, slots=True)
class TooLong:
    """A text longer than any number or code (MAX_TEXT)."""

    text: str


@dataclass(frozen=True, slots=True)
class StopWord:
    """«إيقاف», "stop"…: stops every reminder (only where there are reminders)."""

    text: str


_REMINDER_TAPS = (RemindMe, StopOne, StopAll, StopWord)


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
        tr = translator_for(
            pick_locale(conv.locale, event.platform_language, self.config.default_locale)
        )
        if event.chat_kind is not ChatKind.PRIVATE:
            # Coverage data never goes to a group; say so once, then stay quiet there.
            if conv.group_notice_sent:
                return []
            conv.group_notice_sent = True
            return [texts.private_only(tr)]
        reminders = None
        if self.consent is not None and chat_id is not None:
            today = today_in(self.config.timezone, datetime.fromtimestamp(now, UTC))
            reminders = ChatReminders(self.consent, chat_id, today)
        value = _value_of(event.action, reminders is not None)

        replies: list[Reply] = []
        first_contact = not conv.last_seen
        idle = conv.last_seen and now - conv.last_seen > self.config.idle_timeout
        conv.last_seen = now
        if idle and conv.step is not Step.START:
            conv.restart()
            # A stop button on a days-old reminder is not a lookup that timed out: no note.
            if reminders is None or not isinstance(value, _REMINDER_TAPS):
                replies.append(texts.session_expired(tr))
                if not isinstance(value, Command):
                    return [*replies, texts.greeting(tr)]

        turn = Turn(conv, tr, now, Requester(chat_ref, event.network), reminders, first_contact)
        kind: Kind = f"/{value.name}" if isinstance(value, Command) else type(value)
        handler = (
            FLOW[conv.step].get(kind)
            or (REMINDERS.get(kind) if reminders is not None else None)
            or EVERY_STEP.get(kind)
            or (Engine.unknown_command if isinstance(value, Command) else Engine.stale_button)
        )
        return [*replies, *await handler(self, turn, value)]

    # -- at every step --------------------------------------------------------------------

    async def restart(self, t: Turn, _: object) -> list[Reply]:
        t.conv.restart()
        return [texts.greeting(t.tr)]

    async def cancel(self, t: Turn, _: Command) -> list[Reply]:
        t.conv.restart()
        return [texts.cancelled(t.tr)]

    async def choose_path(self, t: Turn, button: ChoosePath) -> list[Reply]:
        t.conv.restart()
        t.conv.step, t.conv.path = Step.ENTER_ID, button.path
        return [texts.ask_number(t.tr, button.path)]

    async def about(self, t: Turn, _: About) -> list[Reply]:
        if t.conv.step is Step.START:
            return [texts.about(t.tr)]  # the about text carries the first question's buttons
        return [texts.about(t.tr), prompt(t.conv, t.tr)]

    async def help(self, t: Turn, _: Command) -> list[Reply]:
        help_text = texts.help_text(t.tr)
        if t.reminders is not None:
            more = help_text.text + "\n" + consent_texts.help_reminders(t.tr)
            help_text = dataclasses.replace(help_text, text=more)
        return [help_text, prompt(t.conv, t.tr)]

    async def set_language(self, t: Turn, button: SetLanguage) -> list[Reply]:
        return await self._switch_language(t, button.locale)

    async def toggle_language(self, t: Turn, _: Command) -> list[Reply]:
        return await self._switch_language(t, next(x for x in SUPPORTED if x != t.tr.locale))

    async def too_long(self, t: Turn, _: TooLong) -> list[Reply]:
        return [texts.text_too_long(t.tr), prompt(t.conv, t.tr)]

    async def unusable(self, t: Turn, other: Other) -> list[Reply]:
        edited = other.kind is OtherKind.EDITED
        first = texts.edited_ignored(t.tr) if edited else texts.only_text(t.tr)
        return [first, prompt(t.conv, t.tr)]

    async def stale_button(self, t: Turn, _: object) -> list[Reply]:
        """A button from an old message, or data nobody of ours sent."""
        return [texts.stale_button(t.tr), prompt(t.conv, t.tr)]

    async def unknown_command(self, t: Turn, _: object) -> list[Reply]:
        return [texts.unknown_command(t.tr), prompt(t.conv, t.tr)]

    async def _switch_language(self, t: Turn, locale: str) -> list[Reply]:
        t.conv.locale = locale
        if t.reminders is not None:
            await t.reminders.language(locale)
        tr = translator_for(locale)
        question = texts.greeting(tr) if t.conv.step is Step.START else prompt(t.conv, tr)
        return [texts.language_changed(tr), question]

    # -- reminders (consent.py): answered at any step, which stays ---------------------------

    async def remind_me(self, t: Turn, button: RemindMe) -> list[Reply]:
        assert t.reminders is not None
        answer = await t.reminders.remind(t.conv, button.tag, t.tr)
        if answer is None:  # an older card's button: its number is no longer the latest
            return await self.stale_button(t, button)
        return [answer, *_prompt_mid_lookup(t)]

    async def list_reminders(self, t: Turn, _: Command) -> list[Reply]:
        assert t.reminders is not None
        return [await t.reminders.listing(t.tr), *_prompt_mid_lookup(t)]

    async def stop_one(self, t: Turn, button: StopOne) -> list[Reply]:
        assert t.reminders is not None
        return [await t.reminders.stop_one(button.subscription_id, t.tr), *_prompt_mid_lookup(t)]

    async def stop_all(self, t: Turn, _: object) -> list[Reply]:
        assert t.reminders is not None
        return [await t.reminders.stop_all(t.tr), *_prompt_mid_lookup(t)]

    # -- START and RESULT -----------------------------------------------------------------

    async def number_first(self, t: Turn, message: Text) -> list[Reply]:
        """A valid number sent straight away: no need to ask which kind it is."""
        conv = t.conv
        try:
            identity = parse_identity(message.text)
        except InvalidIdentity:
            greet = t.first_contact and conv.step is Step.START
            conv.restart()
            return [texts.greeting(t.tr) if greet else texts.choose_path(t.tr)]
        conv.restart()
        conv.step, conv.path = Step.ENTER_ID, identity.path
        return await self._accept_number(t, identity)

    # -- ENTER_ID -------------------------------------------------------------------------

    async def submit_number(self, t: Turn, message: Text) -> list[Reply]:
        conv = t.conv
        assert conv.path is not None
        try:
            identity = parse_identity(message.text, conv.path)
        except InvalidIdentity as problem:
            if problem.problem is IdProblem.WRONG_PATH and problem.belongs_to is not None:
                # Keep it (hashed) so the switch button can go straight to the code.
                conv.identity = _pending(parse_identity(message.text), self.hash_key)
                return [texts.wrong_path(t.tr, problem.belongs_to)]
            conv.invalid_ids += 1
            reason = texts.invalid_number(t.tr, problem, conv.path)
            if conv.invalid_ids >= self.config.invalid_ids_limit:
                conv.restart()
                return [reason, texts.too_many_invalid(t.tr), texts.greeting(t.tr)]
            return [reason]
        return await self._accept_number(t, identity)

    async def switch_path(self, t: Turn, button: SwitchPath) -> list[Reply]:
        pending = t.conv.identity
        if pending is None or path_of(pending.kind) is not button.path:
            return await self.stale_button(t, button)
        t.conv.path = button.path
        return await self._start_challenge(t)

    async def _accept_number(self, t: Turn, identity: IdentityNumber) -> list[Reply]:
        t.conv.invalid_ids = 0
        t.conv.identity = _pending(identity, self.hash_key)
        return await self._start_challenge(t)

    async def _start_challenge(self, t: Turn) -> list[Reply]:
        """Issue an image code for the pending number, unless a limit says wait."""
        conv, now = t.conv, t.now
        if now < conv.cooldown_until:
            return [texts.cooldown(t.tr, conv.cooldown_until - now)]
        recent = conv.recent_lookups(now)
        if len(recent) >= self.config.lookups_per_hour:
            conv.restart()
            conv.step = Step.RESULT
            limit = self.config.lookups_per_hour
            return [texts.lookup_limit(t.tr, limit, recent[0] + 3600 - now)]
        conv.step = Step.CAPTCHA
        return [await self._new_code(t, texts.captcha_caption)]

    # -- CAPTCHA --------------------------------------------------------------------------

    async def new_image(self, t: Turn, _: NewCode) -> list[Reply]:
        return await self._code_on_request(t, audio=False)

    async def new_audio(self, t: Turn, _: AudioCode) -> list[Reply]:
        return await self._code_on_request(t, audio=True)

    async def _code_on_request(self, t: Turn, *, audio: bool) -> list[Reply]:
        if t.now < t.conv.cooldown_until:
            return [texts.cooldown(t.tr, t.conv.cooldown_until - t.now)]
        caption = texts.captcha_caption if audio else texts.new_code_caption
        return [await self._new_code(t, caption, audio=audio)]

    async def submit_code(self, t: Turn, message: Text) -> list[Reply]:
        conv, now, tr = t.conv, t.now, t.tr
        challenge, pending = conv.challenge, conv.identity
        assert challenge is not None and pending is not None
        if now < conv.cooldown_until:
            return [texts.cooldown(tr, conv.cooldown_until - now)]
        if now - challenge.issued_at > self.config.captcha_ttl:
            caption = texts.code_expired_caption
            return [await self._new_code(t, caption, audio=challenge.audio)]
        typed = normalize_digits(message.text)
        if len(typed) != 6 or not (typed.isascii() and typed.isdecimal()):
            # Not an attempt: nothing that could be the code.
            return [texts.code_format(tr, audio=challenge.audio)]
        if answer_matches(self.hash_key, challenge.code_hmac, typed):
            conv.challenge = None  # single use
            conv.failed_codes = 0
            refusal = await self.limits.look_up(t.who, bytes.fromhex(pending.id_hmac), now)
            if refusal is not None:
                return _refuse(t, refusal)
            return await self._lookup(t, pending)
        challenge.wrong += 1
        conv.failed_codes += 1
        if conv.failed_codes >= self.config.failed_codes_limit:
            conv.cooldown_until = now + self.config.cooldown
            conv.failed_codes = 0
            conv.restart()
            return [texts.cooldown(tr, self.config.cooldown)]
        if challenge.wrong >= self.config.wrong_per_image:
            caption = texts.too_many_wrong_caption
            return [await self._new_code(t, caption, audio=challenge.audio)]
        tries_left = self.config.wrong_per_image - challenge.wrong
        return [texts.wrong_code(tr, tries_left, audio=challenge.audio)]

    async def _new_code(
        self,
        t: Turn,
        caption: Callable[[Translator, str, bool], str],
        *,
        audio: bool = False,
    ) -> Reply:
        """A new code for the pending number, shown or spoken; a limit may say wait instead."""
        conv, tr = t.conv, t.tr
        assert conv.identity is not None
        refusal = await self.limits.challenge(t.who, bytes.fromhex(conv.identity.id_hmac), t.now)
        if refusal is not None:
            return _refuse(t, refusal)[0]
        code = new_code(self.config.captcha_test_code)
        conv.challenge = Challenge(
            code_hmac=code_digest(self.hash_key, code), issued_at=t.now, audio=audio
        )
        text, buttons = caption(tr, conv.identity.masked, audio), texts.new_code_buttons(tr)
        if audio:
            ogg = await self.captcha.render_audio(code, tr.locale)
            return Voice(ogg, text, buttons, rtl=tr.locale == "ar", label=texts.audio_label(tr))
        png = await self.captcha.render(code)
        return Photo(png, text, buttons, rtl=tr.locale == "ar", alt=texts.image_alt(tr))

    async def _lookup(self, t: Turn, pending: PendingIdentity) -> list[Reply]:
        conv = t.conv
        id_hash = bytes.fromhex(pending.id_hmac)
        policies = await self.policies.policies_for_hmac(id_hash)
        today = today_in(self.config.timezone, datetime.fromtimestamp(t.now, UTC))
        coverages = coverage_for(policies, today, self.config.soon_days)
        family: list[Coverage] = []
        if coverages and coverages[0].policy.beneficiary_type is BeneficiaryType.PRINCIPAL:
            dependents = await self.policies.dependents_of(id_hash, coverages[0].policy)
            family = [coverage_of(d, today, self.config.soon_days) for d in dependents]
        conv.lookups.append(t.now)
        conv.identity = None
        conv.step = Step.RESULT
        outcome = coverages[0].state.value if coverages else "not_found"
        await self.audit.record(t.who.chat_ref, id_hash, outcome)
        card = result_card(t.tr, pending.masked, pending.kind, coverages, family)
        offer = t.reminders.offer(conv, pending, coverages, t.tr) if t.reminders else None
        if offer is not None:
            card = dataclasses.replace(card, buttons=((offer,), *card.buttons))
        return [card]


def prompt(conv: Conversation, tr: Translator) -> Message:
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


def _prompt_mid_lookup(t: Turn) -> list[Reply]:
    """After a side answer (/reminders, /stop), what the lookup still waits for."""
    step = t.conv.step
    return [prompt(t.conv, t.tr)] if step is Step.ENTER_ID or step is Step.CAPTCHA else []


def _refuse(t: Turn, refusal: Refusal) -> list[Reply]:
    t.conv.restart()
    t.conv.step = Step.RESULT
    return [texts.refused(t.tr, refusal)]


def _value_of(action: Action, with_reminders: bool) -> object:
    """What the table is looked up by: the decoded button, or the action, or a finer kind
    of text. A button nobody of ours sent stays a `Button` (no row has it: stale)."""
    match action:
        case Button(data=data):
            return decode(data) or action
        case Text(text=text) if with_reminders and consent_texts.is_stop_word(text):
            return StopWord(text)
        case Text(text=text) if len(text) > MAX_TEXT:
            return TooLong(text)
    return action


def _pending(identity: IdentityNumber, key: bytes) -> PendingIdentity:
    return PendingIdentity(
        id_hmac=id_hmac(key, identity.digits).hex(), masked=identity.masked, kind=identity.kind
    )


# ---------------------------------------------------------------------------- the table
# At each step, which handler answers which kind of event. A kind is a button's type
# (bot/conversation/buttons.py), a command ("/name") or a message: Text, TooLong, StopWord,
# Other. Looked up in the step's row, then REMINDERS (channels that can write later), then
# EVERY_STEP; anything else is a stale button or an unknown command, and gets what the
# step is waiting for.

Kind = type[object] | str
Handler = Callable[[Engine, Turn, Any], Awaitable[list[Reply]]]
Row = dict[Kind, Handler]

FLOW: dict[Step, Row] = {
    Step.START: {
        Text: Engine.number_first,  # valid -> CAPTCHA (path from the number) · else the menu
    },
    Step.ENTER_ID: {
        Text: Engine.submit_number,  # valid -> CAPTCHA · other path's -> offer the switch
        SwitchPath: Engine.switch_path,  # -> CAPTCHA for the number just sent
    },
    Step.CAPTCHA: {
        Text: Engine.submit_code,  # right -> RESULT · wrong: 3rd new image, 5th cool-down
        NewCode: Engine.new_image,  # a new code, shown
        AudioCode: Engine.new_audio,  # a new code, spoken (its replacements too)
    },
    Step.RESULT: {
        Text: Engine.number_first,  # valid -> CAPTCHA · else -> START
    },
}
EVERY_STEP: Row = {
    ChoosePath: Engine.choose_path,  # -> ENTER_ID
    NewLookup: Engine.restart,  # -> START
    "/start": Engine.restart,  # -> START
    "/cancel": Engine.cancel,  # -> START
    About: Engine.about,
    "/help": Engine.help,
    SetLanguage: Engine.set_language,
    "/language": Engine.toggle_language,
    TooLong: Engine.too_long,
    Other: Engine.unusable,
}
REMINDERS: Row = {  # consent.py; the step stays
    RemindMe: Engine.remind_me,
    "/reminders": Engine.list_reminders,
    StopOne: Engine.stop_one,
    StopAll: Engine.stop_all,
    StopWord: Engine.stop_all,
    "/stop": Engine.stop_all,
}
