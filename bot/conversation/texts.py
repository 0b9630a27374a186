"""Every sentence the conversation says, built from the gettext catalogs.

Message ids are English; the Arabic lives in bot/locales/ar. Keeping the wording here (and not in
the engine) keeps the transition table readable.
"""

from __future__ import annotations

from bot.conversation.buttons import (
    About,
    AudioCode,
    ChoosePath,
    NewCode,
    NewLookup,
    SetLanguage,
    SwitchPath,
    encode,
)
from bot.conversation.replies import ButtonSpec, Keyboard, Message
from bot.domain.identity import IdProblem, InvalidIdentity, Path
from bot.i18n import LANGUAGE_NAMES, SUPPORTED, Translator, wait_text
from bot.limits import LimitKind, Refusal

# The data of the buttons that carry nothing else, encoded once (bot/conversation/buttons.py).
_ABOUT = encode(About())
_NEW_CODE = encode(NewCode())
_AUDIO_CODE = encode(AudioCode())
_NEW_LOOKUP = encode(NewLookup())
_CITIZEN = encode(ChoosePath(Path.CITIZEN))
_RESIDENT = encode(ChoosePath(Path.RESIDENT))


def _message(tr: Translator, text: str, buttons: Keyboard = ()) -> Message:
    return Message(text, buttons, rtl=tr.locale == "ar")


def list_button(tr: Translator) -> str:
    """The label that opens a keyboard of more than 3 buttons where it becomes a list
    (WhatsApp: at most 20 characters)."""
    return tr._("Choose")


def language_button(tr: Translator) -> ButtonSpec:
    other = next(lang for lang in SUPPORTED if lang != tr.locale)
    return ButtonSpec(LANGUAGE_NAMES[other], encode(SetLanguage(other)))


def menu_buttons(tr: Translator) -> Keyboard:
    return (
        (
            ButtonSpec(tr._("Citizen"), _CITIZEN),
            ButtonSpec(tr._("Resident / visitor"), _RESIDENT),
        ),
        (ButtonSpec(tr._("About insurance"), _ABOUT), language_button(tr)),
    )


def new_lookup_buttons(tr: Translator) -> Keyboard:
    return ((ButtonSpec(tr._("New lookup"), _NEW_LOOKUP),),)


def new_code_buttons(tr: Translator) -> Keyboard:
    return (
        (
            ButtonSpec(tr._("New code"), _NEW_CODE),
            ButtonSpec(tr._("🔊 Audio code"), _AUDIO_CODE),
        ),
    )


def greeting(tr: Translator) -> Message:
    return _message(
        tr,
        tr._(
            "Hello! I can tell you whether your health insurance is valid, with which company, "
            "and until when.\n\nAre you a citizen, or a resident or visitor?"
        ),
        menu_buttons(tr),
    )


def choose_path(tr: Translator) -> Message:
    return _message(
        tr,
        tr._("Please choose one of the buttons: citizen, or resident / visitor."),
        menu_buttons(tr),
    )


def about(tr: Translator) -> Message:
    return _message(
        tr,
        tr._(
            "Who must have health insurance in Saudi Arabia:\n"
            "• Saudi citizens working in the government or private sector, and their families\n"
            "• All residents, in government or private work\n"
            "• People with chronic diseases or disabilities\n"
            "• Productive families and people on low incomes\n\n"
            "Covered services include clinical examinations, psychological therapy, "
            "physiotherapy for patients who need it, and medicines.\n\n"
            "Health insurance is regulated by the Insurance Authority (ia.gov.sa)."
        ),
        menu_buttons(tr),
    )


def ask_number(tr: Translator, path: Path) -> Message:
    if path is Path.CITIZEN:
        text = tr._("Send your national ID number: 10 digits starting with 1.")
    else:
        text = tr._(
            "Send your iqama (residence) number: 10 digits starting with 2, "
            "or your border number starting with 3 or 4."
        )
    return _message(tr, text)


def invalid_number(tr: Translator, problem: InvalidIdentity, path: Path) -> Message:
    reason = {
        IdProblem.EMPTY: lambda: tr._("I could not find a number in your message."),
        IdProblem.NON_DIGITS: lambda: tr._("The number should contain digits only."),
        IdProblem.WRONG_LENGTH: lambda: tr.ngettext(
            "You sent {n} digit, but the number has 10 digits.",
            "You sent {n} digits, but the number has 10 digits.",
            problem.digits_given,
        ),
        IdProblem.BAD_PREFIX: lambda: tr._(
            "A national ID starts with 1, an iqama with 2, and a border number with 3 or 4."
        ),
        IdProblem.BAD_CHECK_DIGIT: lambda: tr._(
            "This number is not valid; please check it for a mistyped digit."
        ),
    }[problem.problem]()
    hint = (
        tr._("Send your national ID number: 10 digits starting with 1.")
        if path is Path.CITIZEN
        else tr._("Send your iqama or border number: 10 digits starting with 2, 3 or 4.")
    )
    return _message(tr, f"{reason}\n{hint}")


def wrong_path(tr: Translator, belongs_to: Path) -> Message:
    if belongs_to is Path.RESIDENT:
        text = tr._(
            "This is an iqama or border number, not a national ID. "
            "Tap the button to check it as a resident or visitor, or send a national ID."
        )
        label = tr._("As resident/visitor")
    else:
        text = tr._(
            "This is a national ID of a citizen. "
            "Tap the button to check it as a citizen, or send an iqama or border number."
        )
        label = tr._("As citizen")
    return _message(tr, text, ((ButtonSpec(label, encode(SwitchPath(belongs_to))),),))


def too_many_invalid(tr: Translator) -> Message:
    return _message(
        tr,
        tr._("That was three invalid numbers in a row, so let us start again."),
    )


def captcha_caption(tr: Translator, masked: str, audio: bool = False) -> str:
    if audio:
        return tr._(
            "Listen to the six digits of this audio code and send them (for number {masked}).",
            masked=masked,
        )
    return (
        tr._(
            "To protect your data, send the six-digit visual code shown in the image "
            "(for number {masked}).",
            masked=masked,
        )
        + "\n"
        # The image mixes both digit scripts (what defeats generic solvers): a key for
        # people who read only one of them; either script is accepted as the answer.
        + tr._("The code mixes Arabic and Western digits: ٠=0 ١=1 ٣=3 ٤=4 ٧=7 ٨=8 ٩=9.")
    )


def image_alt(tr: Translator) -> str:
    # What the image is, and its alternative: the caption beside it already says what to do.
    return tr._("Image code (an audio code is offered too)")


def audio_label(tr: Translator) -> str:
    return tr._("Audio code, six digits")


def code_expired_caption(tr: Translator, masked: str, audio: bool = False) -> str:
    return tr._("The code expired. Here is a new one.") + "\n" + captcha_caption(tr, masked, audio)


def too_many_wrong_caption(tr: Translator, masked: str, audio: bool = False) -> str:
    why = (
        tr._("Three wrong answers for this audio code. Here is a new one.")
        if audio
        else tr._("Three wrong answers for this image. Here is a new code.")
    )
    return why + "\n" + captcha_caption(tr, masked, audio)


def new_code_caption(tr: Translator, masked: str, audio: bool = False) -> str:
    return tr._("Here is a new code.") + "\n" + captcha_caption(tr, masked, audio)


def wrong_code(tr: Translator, tries_left: int, audio: bool = False) -> Message:
    text = (
        tr.ngettext(
            "That code is not right. You have {n} more try for this audio code.",
            "That code is not right. You have {n} more tries for this audio code.",
            tries_left,
        )
        if audio
        else tr.ngettext(
            "That code is not right. You have {n} more try for this image.",
            "That code is not right. You have {n} more tries for this image.",
            tries_left,
        )
    )
    return _message(tr, text, new_code_buttons(tr))


def code_format(tr: Translator, audio: bool = False) -> Message:
    text = (
        tr._("The code is the six digits you heard. Please send them, or tap «New code».")
        if audio
        else tr._(
            "The code is the six digits shown in the image. Please send them, or tap «New code»."
        )
    )
    return _message(tr, text, new_code_buttons(tr))


def cooldown(tr: Translator, seconds_left: float) -> Message:
    return _message(
        tr,
        tr._(
            "Too many wrong codes in a row. For your security, please try again in {wait}.",
            wait=wait_text(seconds_left, tr),
        ),
    )


def lookup_limit(tr: Translator, limit: int, seconds_left: float) -> Message:
    return _message(
        tr,
        tr.ngettext(
            "You have reached the limit of {n} lookup per hour. You can check again in {wait}.",
            "You have reached the limit of {n} lookups per hour. You can check again in {wait}.",
            limit,
            wait=wait_text(seconds_left, tr),
        ),
        new_lookup_buttons(tr),
    )


def refused(tr: Translator, refusal: Refusal) -> Message:
    """A limit says wait: when to try again, and nothing about the number itself."""
    wait = wait_text(refusal.retry_after, tr)
    match refusal.kind:
        case LimitKind.CHALLENGES:
            text = tr._(
                "You have asked for many codes in a short time. "
                "You can ask for a new code in {wait}.",
                wait=wait,
            )
        case LimitKind.ADDRESS_LOOKUPS:
            text = tr._(
                "Many lookups were made from your network in the last hour. "
                "You can check again in {wait}.",
                wait=wait,
            )
        case LimitKind.NUMBER_LOOKUPS:
            text = tr.ngettext(
                "This number was already checked {n} time in the last 24 hours, the most we "
                "allow, to protect its owner. You can check it again in {wait}.",
                "This number was already checked {n} times in the last 24 hours, the most we "
                "allow, to protect its owner. You can check it again in {wait}.",
                refusal.limit,
                wait=wait,
            )
        case LimitKind.BUSY:
            text = tr._("The service is very busy right now. Please try again in a few minutes.")
        case LimitKind.SESSIONS:
            text = tr._(
                "Too many new conversations were started from your network. "
                "Please try again in {wait}.",
                wait=wait,
            )
    return _message(tr, text, new_lookup_buttons(tr))


def session_expired(tr: Translator) -> Message:
    return _message(
        tr,
        tr._("Your previous session ended after 10 minutes without activity, so we start over."),
    )


def cancelled(tr: Translator) -> Message:
    return _message(
        tr, tr._("Cancelled. Send /start whenever you want to check an insurance status.")
    )


def help_text(tr: Translator) -> Message:
    return _message(
        tr,
        tr._(
            "I check the health-insurance status of a national ID, iqama or border number.\n"
            "1. Choose citizen or resident / visitor.\n"
            "2. Send the 10-digit number (Arabic or Western digits).\n"
            "3. Send the six-digit code from the image.\n\n"
            "Commands: /start begin again · /cancel stop · /language switch language · "
            "/help this help."
        ),
    )


def language_changed(tr: Translator) -> Message:
    return _message(tr, tr._("From now on I will answer in English."))


def unknown_command(tr: Translator) -> Message:
    return _message(tr, tr._("I do not know that command."))


def stale_button(tr: Translator) -> Message:
    return _message(tr, tr._("That button is no longer active."))


def text_too_long(tr: Translator) -> Message:
    return _message(tr, tr._("That message is too long for me."))


def only_text(tr: Translator) -> Message:
    return _message(tr, tr._("I can only read text messages and button taps."))


def edited_ignored(tr: Translator) -> Message:
    return _message(
        tr, tr._("I do not read edited messages. Please send it again as a new message.")
    )


def private_only(tr: Translator) -> Message:
    return _message(
        tr,
        tr._(
            "To protect your data I only answer in a private chat. "
            "Please open a private chat with me and send /start."
        ),
    )


def something_went_wrong(tr: Translator) -> Message:
    return _message(
        tr, tr._("Sorry, something went wrong on our side. Please try again, or send /start.")
    )


def waiting_for_captcha(tr: Translator) -> Message:
    return _message(
        tr,
        tr._("I am waiting for the six-digit code, or tap «New code» or «🔊 Audio code»."),
        new_code_buttons(tr),
    )


def after_result(tr: Translator) -> Message:
    return _message(
        tr,
        tr._("To check another number, tap «New lookup» or send /start."),
        new_lookup_buttons(tr),
    )
