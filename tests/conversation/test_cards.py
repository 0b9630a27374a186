"""The result card through the engine: its words, its next step, the family on a policy, its
status as data, and what keeps it whole on a narrow screen. Exact text in both languages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.conversation.events import Button, Text
from bot.conversation.replies import Mark, Message
from bot.domain.policy import BeneficiaryType, Insurer, Policy
from bot.i18n import NBSP
from tests.conversation.harness import CODE, TODAY, Person, policy, text_of

PRINCIPAL, SPOUSE, CHILD = "2000000006", "2112345679", "2123456788"
TAWUNIYA = Insurer(code="TAWUNIYA", name_ar="التعاونية", name_en="Tawuniya")


def member(number: str, masked: str, kind: BeneficiaryType, **changes: object) -> Policy:
    """One person on the family policy BUPA-90551200 (the demo's principal and dependents)."""
    values: dict[str, object] = {
        "id_masked": masked,
        "beneficiary_type": kind,
        "policy_class": "A",
        "network": "Premium",
        "deductible_rate": "10%",
    }
    return policy("BUPA-90551200", 120, **(values | changes))


def family(dependents: int = 2) -> dict[str, list[Policy]]:
    numbers = {PRINCIPAL: [member(PRINCIPAL, "2*******06", BeneficiaryType.PRINCIPAL)]}
    for i, number in enumerate([SPOUSE, CHILD, *(f"21000000{n:02}" for n in range(20))]):
        if i < dependents:
            masked = number[0] + "*******" + number[-2:]
            numbers[number] = [member(number, masked, BeneficiaryType.DEPENDENT)]
    return numbers


async def card_for(numbers: dict[str, list[Policy]], number: str, language: str) -> Message:
    person = Person(numbers, language=language)
    await person.send(Text(number))
    [card] = await person.send(Text(CODE))
    assert isinstance(card, Message)
    return card


async def text_for(numbers: dict[str, list[Policy]], number: str, language: str) -> str:
    return text_of(await card_for(numbers, number, language))


# ------------------------------------------------------------------------------ the family

PRINCIPAL_AR = """\
التأمين الصحي لرقم الإقامة 2*******06
✅ التأمين سارٍ، ويتبقى على انتهائه 120 يومًا.

شركة التأمين: بوبا العربية
الفئة: A
رقم الوثيقة: BUPA-90551200
نوع المستفيد: رئيسي
الشبكة الطبية: Premium
نسبة التحمل: 10%
تاريخ الانتهاء: 17 شوال 1448 هـ (25 مارس 2027)

مشمولون أيضًا بهذه الوثيقة:
• 2*******79 (تابع): سارية
• 2*******88 (تابع): سارية"""

PRINCIPAL_EN = """\
Health insurance for iqama 2*******06
✅ Insured: the policy is valid for 120 days more.

Insurance company: Bupa Arabia
Class: A
Policy number: BUPA-90551200
Beneficiary: principal
Medical network: Premium
Deductible: 10%
Expiry date: 17 Shawwal 1448 AH (25 March 2027)

Also on this policy:
• 2*******79 (dependent): valid
• 2*******88 (dependent): valid"""

DEPENDENT_AR = """\
التأمين الصحي لرقم الإقامة 2*******79
✅ التأمين سارٍ، ويتبقى على انتهائه 120 يومًا.

شركة التأمين: بوبا العربية
الفئة: A
رقم الوثيقة: BUPA-90551200
نوع المستفيد: تابع، مشمول بوثيقة المؤمَّن له الرئيسي
الشبكة الطبية: Premium
نسبة التحمل: 10%
تاريخ الانتهاء: 17 شوال 1448 هـ (25 مارس 2027)"""

DEPENDENT_EN = """\
Health insurance for iqama 2*******79
✅ Insured: the policy is valid for 120 days more.

Insurance company: Bupa Arabia
Class: A
Policy number: BUPA-90551200
Beneficiary: dependent, covered under the principal member's policy
Medical network: Premium
Deductible: 10%
Expiry date: 17 Shawwal 1448 AH (25 March 2027)"""


@pytest.mark.parametrize(("language", "expected"), [("ar", PRINCIPAL_AR), ("en", PRINCIPAL_EN)])
async def test_a_principal_sees_the_dependents_on_the_policy(language: str, expected: str) -> None:
    assert await text_for(family(), PRINCIPAL, language) == expected


@pytest.mark.parametrize(("language", "expected"), [("ar", DEPENDENT_AR), ("en", DEPENDENT_EN)])
async def test_a_dependent_is_told_so_without_the_principal_s_number(
    language: str, expected: str
) -> None:
    text = await text_for(family(), SPOUSE, language)
    assert text == expected
    # Neither the principal's number nor the other dependent's, masked or not.
    assert "2*******06" not in text and "2*******88" not in text


async def test_a_dependent_s_own_status_and_a_long_family_list() -> None:
    numbers = family(dependents=8)
    numbers[CHILD] = [member(CHILD, "2*******88", BeneficiaryType.DEPENDENT, status="suspended")]
    ar = (await text_for(numbers, PRINCIPAL, "ar")).split("\n\n")[-1].splitlines()
    assert ar == [
        "مشمولون أيضًا بهذه الوثيقة:",
        "• 2*******79 (تابع): سارية",
        "• 2*******88 (تابع): موقوفة",
        "• 2*******00 (تابع): سارية",
        "• 2*******01 (تابع): سارية",
        "• 2*******02 (تابع): سارية",
        "• 2*******03 (تابع): سارية",
        "…وتابعان آخران.",
    ]
    en = (await text_for(numbers, PRINCIPAL, "en")).split("\n\n")[-1].splitlines()
    assert en[2] == "• 2*******88 (dependent): suspended"
    assert en[-1] == "…and 2 more dependents."


async def test_no_family_list_without_dependents_or_on_another_policy() -> None:
    alone = {PRINCIPAL: family()[PRINCIPAL]}
    assert "Also on this policy" not in await text_for(alone, PRINCIPAL, "en")
    elsewhere = family()
    elsewhere[SPOUSE] = [member(SPOUSE, "2*******79", BeneficiaryType.DEPENDENT, insurer=TAWUNIYA)]
    lines = (await text_for(elsewhere, PRINCIPAL, "en")).splitlines()
    assert lines[-2:] == ["Also on this policy:", "• 2*******88 (dependent): valid"]


# ------------------------------------------------------------------ headers and next steps


HEADERS = {
    "1000000008": (
        "التأمين الصحي لرقم الهوية 1*******08",
        "Health insurance for national ID 1*******08",
    ),
    "2000000006": (
        "التأمين الصحي لرقم الإقامة 2*******06",
        "Health insurance for iqama 2*******06",
    ),
    "3012345678": (
        "التأمين الصحي لرقم الحدود 3*******78",
        "Health insurance for border number 3*******78",
    ),
    "4012345678": (
        "التأمين الصحي لرقم الحدود 4*******78",
        "Health insurance for border number 4*******78",
    ),
}


@pytest.mark.parametrize("number", HEADERS)
async def test_the_header_names_the_kind_of_number(number: str) -> None:
    ar, en = HEADERS[number]
    for found in ({number: [policy("P", 200)]}, {}):  # with a policy, and without
        assert (await text_for(found, number, "ar")).splitlines()[0] == ar
        assert (await text_for(found, number, "en")).splitlines()[0] == en


EXPIRED_AR = """\
التأمين الصحي لرقم الهوية 1*******09
❌ التأمين غير سارٍ: مضى على انتهاء الوثيقة 20 يومًا.

شركة التأمين: بوبا العربية
الفئة: VIP
رقم الوثيقة: WL-1
نوع المستفيد: رئيسي
الشبكة الطبية: Gold
نسبة التحمل: 20%
تاريخ الانتهاء: 25 جمادى الأولى 1448 هـ (5 نوفمبر 2026)

ما العمل: قد لا تُغطّى تكاليف العلاج دون تأمين ساري المفعول. لتجديد الوثيقة راجع جهة عملك \
أو كفيلك، أو شركة بوبا العربية إن كنت تدفع قيمتها بنفسك."""

EXPIRED_EN = """\
Health insurance for national ID 1*******09
❌ Not insured: the policy expired 20 days ago.

Insurance company: Bupa Arabia
Class: VIP
Policy number: WL-1
Beneficiary: principal
Medical network: Gold
Deductible: 20%
Expiry date: 25 Jumada al-Ula 1448 AH (5 November 2026)

What to do: without valid insurance, treatment may not be covered. To renew the policy, \
contact your employer or sponsor, or Bupa Arabia if you pay for it yourself."""


async def test_an_expired_card_says_whom_to_ask_for_a_renewal() -> None:
    numbers = {"1045678909": [policy("WL-1", -20)]}
    assert await text_for(numbers, "1045678909", "ar") == EXPIRED_AR
    assert await text_for(numbers, "1045678909", "en") == EXPIRED_EN


@pytest.mark.parametrize(
    ("changes", "ar", "en"),
    [
        (
            {"status": "cancelled"},
            "ما العمل: اسأل جهة عملك أو كفيلك، أو شركة التعاونية، عن سبب إلغاء الوثيقة، واطلب "
            "وثيقة جديدة. ويمكنك أيضًا التواصل مع هيئة التأمين (ia.gov.sa).",
            "What to do: ask your employer or sponsor, or Tawuniya, why the policy was cancelled, "
            "and ask for a new policy. You can also contact the Insurance Authority (ia.gov.sa).",
        ),
        (
            {"status": "suspended"},
            "ما العمل: تواصل مع شركة التعاونية لمعرفة سبب إيقاف الوثيقة وكيفية رفع الإيقاف، "
            "ويمكن أن تساعدك جهة عملك أو كفيلك. ويمكنك أيضًا التواصل مع هيئة التأمين "
            "(ia.gov.sa).",
            "What to do: contact Tawuniya to find out why the policy is suspended and how to lift "
            "the suspension; your employer or sponsor can help. You can also contact the "
            "Insurance Authority (ia.gov.sa).",
        ),
        (
            {"expiry_date": TODAY + timedelta(days=7)},
            "ما العمل: اطلب من جهة عملك أو كفيلك تجديد الوثيقة قبل انتهائها، أو تواصل مع شركة "
            "التعاونية إن كنت تدفع قيمتها بنفسك.",
            "What to do: ask your employer or sponsor to renew the policy before it ends, or "
            "Tawuniya if you pay for it yourself.",
        ),
        (
            {"start_date": TODAY + timedelta(days=10)},
            "ما العمل: لا تغطيك هذه الوثيقة حتى يبدأ سريانها. وإن احتجت إلى تغطية قبل ذلك فراجع "
            "جهة عملك أو كفيلك، أو شركة التعاونية.",
            "What to do: this policy does not cover you until it starts. If you need cover "
            "sooner, ask your employer or sponsor, or Tawuniya.",
        ),
    ],
)
async def test_every_card_that_does_not_simply_cover_ends_with_a_next_step(
    changes: dict[str, object], ar: str, en: str
) -> None:
    numbers = {"1000000008": [policy("T-1", 200, insurer=TAWUNIYA, **changes)]}
    assert (await text_for(numbers, "1000000008", "ar")).split("\n\n")[-1] == ar
    assert (await text_for(numbers, "1000000008", "en")).split("\n\n")[-1] == en


async def test_a_valid_card_ends_with_its_details() -> None:
    text = await text_for({"1000000008": [policy("P", 200)]}, "1000000008", "en")
    assert text.splitlines()[-1] == "Expiry date: 8 Muharram 1449 AH (13 June 2027)"


async def test_other_policies_say_when_they_ended_ended_or_start() -> None:
    numbers = {
        "2134567896": [
            policy("NOW", 200),
            policy("OLD", -10, insurer=TAWUNIYA),
            policy("C", -5, status="cancelled"),
            policy("S", 30, status="suspended"),
            policy("NEXT", 500, start_date=TODAY + timedelta(days=200)),
        ]
    }
    ar = (await text_for(numbers, "2134567896", "ar")).split("\n\n")[-1].splitlines()
    assert ar == [
        "وثائق أخرى لهذا الرقم:",
        "• بوبا العربية، الوثيقة NEXT: لم تبدأ بعد، تبدأ في 8 محرم 1449 هـ (13 يونيو 2027)",
        "• بوبا العربية، الوثيقة S: موقوفة، تنتهي في 16 رجب 1448 هـ (25 ديسمبر 2026)",
        "• بوبا العربية، الوثيقة C: ملغاة، انتهت في 10 جمادى الآخرة 1448 هـ (20 نوفمبر 2026)",
        "• التعاونية، الوثيقة OLD: منتهية، انتهت في 5 جمادى الآخرة 1448 هـ (15 نوفمبر 2026)",
    ]
    en = (await text_for(numbers, "2134567896", "en")).split("\n\n")[-1].splitlines()
    assert en == [
        "Other policies for this number:",
        "• Bupa Arabia, policy NEXT: not started, starts on 8 Muharram 1449 AH (13 June 2027)",
        "• Bupa Arabia, policy S: suspended, ends on 16 Rajab 1448 AH (25 December 2026)",
        "• Bupa Arabia, policy C: cancelled, ended on 10 Jumada al-Akhirah 1448 AH "
        "(20 November 2026)",
        "• Tawuniya, policy OLD: expired on 5 Jumada al-Akhirah 1448 AH (15 November 2026)",
    ]


# -------------------------------------------------------------- the status, without emoji

# (policy changes, mark, status words in Arabic, in English): every state a card can have.
STATES = [
    (
        {},
        Mark.VALID,
        "التأمين سارٍ، ويتبقى على انتهائه 200 يوم.",
        "Insured: the policy is valid for 200 days more.",
    ),
    (
        {"expiry_date": TODAY + timedelta(days=7)},
        Mark.EXPIRING,
        "التأمين سارٍ، لكنه ينتهي قريبًا: يتبقى على انتهائه 7 أيام.",
        "Insured, but the policy expires in 7 days.",
    ),
    (
        {"expiry_date": TODAY},
        Mark.EXPIRING,
        "التأمين سارٍ، لكنه ينتهي اليوم.",
        "Insured, but the policy expires today.",
    ),
    (
        {"start_date": TODAY + timedelta(days=10)},
        Mark.PENDING,
        "لا يوجد تأمين سارٍ بعد: تبدأ هذه الوثيقة في 25 جمادى الآخرة 1448 هـ (5 ديسمبر 2026).",
        "Not insured yet: this policy starts on 25 Jumada al-Akhirah 1448 AH (5 December 2026).",
    ),
    (
        {"expiry_date": TODAY - timedelta(days=3)},
        Mark.INVALID,
        "التأمين غير سارٍ: مضى على انتهاء الوثيقة 3 أيام.",
        "Not insured: the policy expired 3 days ago.",
    ),
    (
        {"status": "cancelled"},
        Mark.INVALID,
        "التأمين غير سارٍ: هذه الوثيقة ملغاة.",
        "Not insured: this policy was cancelled.",
    ),
    (
        {"status": "suspended"},
        Mark.SUSPENDED,
        "التأمين غير سارٍ: هذه الوثيقة موقوفة.",
        "Not insured: this policy is suspended.",
    ),
    (
        None,
        Mark.INVALID,
        "لا توجد وثيقة تأمين صحي مسجلة لهذا الرقم.",
        "No health insurance policy is registered for this number.",
    ),
]


def without_emoji(card: Message) -> str:
    """The status line as a channel without emoji shows it (the web chat)."""
    assert card.status is not None and card.status.index == 1
    line = text_of(card).splitlines()[1]
    assert line.startswith(card.status.emoji + " ")
    return line.removeprefix(card.status.emoji + " ")


@pytest.mark.parametrize(("changes", "mark", "ar", "en"), STATES)
async def test_the_status_is_data_and_its_words_stand_alone(
    changes: dict[str, object] | None, mark: Mark, ar: str, en: str
) -> None:
    numbers = {} if changes is None else {"1000000008": [policy("P", 200, **changes)]}
    for language, words in (("ar", ar), ("en", en)):
        card = await card_for(numbers, "1000000008", language)
        assert card.status is not None and card.status.mark is mark
        assert without_emoji(card) == words


def test_the_status_words_are_unambiguous() -> None:
    # Covered or not is said in words: a covered state never reads as an uncovered one.
    for _, mark, ar, en in STATES:
        covered = mark in (Mark.VALID, Mark.EXPIRING)
        assert ar.startswith("التأمين سارٍ،") is covered
        assert ("غير سارٍ" in ar or ar.startswith("لا ")) is not covered
        assert en.startswith("Insured") is covered
        assert en.startswith(("Not insured", "No ")) is not covered
    assert len({ar for _, _, ar, _ in STATES}) == len({en for *_, en in STATES}) == len(STATES)


# ------------------------------------------------------------ what a narrow screen may break


def breakable_spaces(text: str) -> list[str]:
    """Every ordinary space between a number and the word after it, with its neighbours."""
    return re.findall(r"\S*\d [^\W\d_]\S*", text)


async def test_counts_and_dates_on_a_card_never_break_inside() -> None:
    numbers = {
        "3012345678": [policy("V-1", 75), policy("OLD", -10)],
        **family(),
    }
    for language in ("ar", "en"):
        for number in ("3012345678", PRINCIPAL):
            raw = (await card_for(numbers, number, language)).text
            assert breakable_spaces(raw) == [], raw
    raw = (await card_for(numbers, "3012345678", "ar")).text
    assert f"75{NBSP}يومًا" in raw
    assert f"1{NBSP}رمضان{NBSP}1448{NBSP}هـ (8{NBSP}فبراير{NBSP}2027)" in raw
    raw = (await card_for(numbers, "3012345678", "en")).text
    assert f"75{NBSP}days" in raw
    assert f"1{NBSP}Ramadan{NBSP}1448{NBSP}AH (8{NBSP}February{NBSP}2027)" in raw


# -------------------------------------------------------------- the words around the card

ABOUT = {
    "ar": """\
من يجب أن يكون لديه تأمين صحي في المملكة العربية السعودية:
• المواطنون العاملون في القطاع الحكومي أو الخاص، وأسرهم
• جميع المقيمين، في القطاع الحكومي أو الخاص
• ذوو الأمراض المزمنة أو الإعاقة
• الأسر المنتجة وذوو الدخل المحدود

تشمل الخدمات المغطاة: الفحوص السريرية، والعلاج النفسي، والعلاج الطبيعي لمن يحتاج إليه، والأدوية.

تتولى هيئة التأمين (ia.gov.sa) تنظيم التأمين الصحي.""",
    "en": """\
Who must have health insurance in Saudi Arabia:
• Saudi citizens working in the government or private sector, and their families
• All residents, in government or private work
• People with chronic diseases or disabilities
• Productive families and people on low incomes

Covered services include clinical examinations, psychological therapy, physiotherapy for \
patients who need it, and medicines.

Health insurance is regulated by the Insurance Authority (ia.gov.sa).""",
}


@pytest.mark.parametrize("language", ["ar", "en"])
async def test_physiotherapy_is_a_covered_service_not_a_group_to_insure(language: str) -> None:
    person = Person(language=language)
    await person.send(Text("/start"))
    assert await person.texts(Button("about")) == [ABOUT[language]]


async def test_the_greeting_asks_whether_the_insurance_is_valid_in_good_arabic() -> None:
    assert (await Person().texts(Text("السلام عليكم")))[0].splitlines()[0] == (
        "مرحبًا! أساعدك في معرفة حالة تأمينك الصحي: هل هو سارٍ، ولدى أي شركة، وحتى متى."
    )
