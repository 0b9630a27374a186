"""A result card goes to WhatsApp as one interactive message: its text is the body (at most
1,024 characters) and its buttons sit under it, the family card's and the longest one's too."""

from __future__ import annotations

import pytest

from bot.channels.whatsapp_render import MAX_BODY, payloads
from bot.conversation.card import result_card
from bot.conversation.replies import MAX_CARD_TEXT, Message
from bot.domain.identity import IdKind
from bot.domain.policy import BeneficiaryType, Coverage, Insurer, coverage_for, coverage_of
from bot.i18n import plain_text, translator_for
from tests.conversation.harness import TODAY, policy

# The longest insurer name of bot/data/insurers.csv's kind, and long policy numbers.
UCA = Insurer(
    code="UCA", name_ar="المتحدة للتأمين التعاوني", name_en="United Cooperative Assurance"
)
NUMBER = "UCA-2026-00012345"


def dependents(count: int) -> list[Coverage]:
    return [
        coverage_of(
            policy(
                NUMBER,
                7,
                insurer=UCA,
                id_masked=f"2*******{n:02}",
                beneficiary_type=BeneficiaryType.DEPENDENT,
            ),
            TODAY,
            30,
        )
        for n in range(count)
    ]


def card(locale: str, other_policies: int, family: int) -> Message:
    mine = policy(NUMBER, 7, insurer=UCA, network="Gold Network Plus")  # expiring: a next step
    older = [policy(f"UCA-2025-000123{n:02}", -30 * n - 5, insurer=UCA) for n in range(1, 9)]
    coverages = coverage_for([mine, *older[:other_policies]], TODAY, 30)
    return result_card(
        translator_for(locale), "2*******06", IdKind.IQAMA, coverages, dependents(family)
    )


def one_interactive_message(message: Message) -> str:
    [sent] = payloads("966500000001", message, "اختر")
    assert sent["type"] == "interactive", "the card came apart into a text and its buttons"
    body: str = sent["interactive"]["body"]["text"]
    assert body == message.text and len(body) <= MAX_BODY
    return body


@pytest.mark.parametrize("locale", ["ar", "en"])
def test_the_family_card_is_one_interactive_message(locale: str) -> None:
    body = plain_text(one_interactive_message(card(locale, other_policies=0, family=2)))
    soon = {"ar": "(تابع): سارية وتنتهي قريبًا", "en": "(dependent): valid, expiring soon"}[locale]
    assert body.splitlines()[-4:-2] == [f"• 2*******00 {soon}", f"• 2*******01 {soon}"]


LONGEST_TAIL = {
    "ar": [
        "• 2*******05 (تابع): سارية وتنتهي قريبًا",
        "…و3 تابعين آخرين.",
        "",
        "وثائق أخرى لهذا الرقم:",
        "• المتحدة للتأمين التعاوني، الوثيقة UCA-2025-00012301: منتهية، انتهت في "
        "10 جمادى الأولى 1448 هـ (21 أكتوبر 2026)",
        "…و7 وثائق أخرى.",
        "",
        "ما العمل: اطلب من جهة عملك أو كفيلك تجديد الوثيقة قبل انتهائها، أو تواصل مع شركة "
        "المتحدة للتأمين التعاوني إن كنت تدفع قيمتها بنفسك.",
    ],
    "en": [
        "• 2*******05 (dependent): valid, expiring soon",
        "…and 3 more dependents.",
        "",
        "Other policies for this number:",
        "• United Cooperative Assurance, policy UCA-2025-00012301: expired on "
        "10 Jumada al-Ula 1448 AH (21 October 2026)",
        "…and 7 more policies.",
        "",
        "What to do: ask your employer or sponsor to renew the policy before it ends, or "
        "United Cooperative Assurance if you pay for it yourself.",
    ],
}


@pytest.mark.parametrize("locale", ["ar", "en"])
def test_the_longest_card_gives_way_to_fit_and_says_what_it_left_out(locale: str) -> None:
    # Nine dependents, eight older policies, the longest insurer name, a next step: the
    # other policies give way first, then the family list stops at six, counting the rest.
    body = plain_text(one_interactive_message(card(locale, other_policies=8, family=9)))
    assert MAX_CARD_TEXT == MAX_BODY
    assert body.count("\n• 2*******") == 6
    assert body.splitlines()[-8:] == LONGEST_TAIL[locale]


def test_with_no_room_at_all_the_other_policies_are_only_counted() -> None:
    tr = translator_for("en")
    mine = policy(NUMBER, 200, insurer=UCA, network="N" * 500)  # an operator's long value
    older = [policy(f"OLD-{n}", -30 * n, insurer=UCA) for n in range(1, 4)]
    coverages = coverage_for([mine, *older], TODAY, 30)
    message = result_card(tr, "2*******06", IdKind.IQAMA, coverages, dependents(9))
    body = plain_text(one_interactive_message(message))
    assert body.split("\n\n")[-2:] == [
        "Also on this policy:\n"
        + "".join(f"• 2*******{n:02} (dependent): valid, expiring soon\n" for n in range(3))
        + "…and 6 more dependents.",
        "This number has 3 other policies.",
    ]
