"""The result card: what a lookup found, short and in the person's language."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.replies import MAX_CARD_TEXT, Mark, Message, StatusLine
from bot.conversation.texts import new_lookup_buttons
from bot.domain.identity import IdKind
from bot.domain.policy import BeneficiaryType, Coverage, CoverageState
from bot.i18n import Translator, days_text, format_date

# How many further policies to list under the most relevant one.
MAX_OTHERS = 4
# How many dependents to list under a principal's policy (then "…and 2 more dependents").
MAX_DEPENDENTS = 6


# What each state says at a glance: the emoji text channels show, the mark the web chat draws.
_MARKS = {
    CoverageState.ACTIVE: (Mark.VALID, "✅"),
    CoverageState.EXPIRING_SOON: (Mark.EXPIRING, "⚠️"),
    CoverageState.NOT_STARTED: (Mark.PENDING, "🕒"),
    CoverageState.EXPIRED: (Mark.INVALID, "❌"),
    CoverageState.CANCELLED: (Mark.INVALID, "❌"),
    CoverageState.SUSPENDED: (Mark.SUSPENDED, "⛔"),
}
_NOT_FOUND = (Mark.INVALID, "❌")


def status_words(tr: Translator, coverage: Coverage) -> str:
    """The status in words alone: unambiguous without the emoji that comes before it."""
    days = coverage.days_remaining
    policy = coverage.policy
    match coverage.state:
        case CoverageState.ACTIVE:
            return tr._("Insured: the policy is valid for {days} more.", days=days_text(days, tr))
        case CoverageState.EXPIRING_SOON if days == 0:
            return tr._("Insured, but the policy expires today.")
        case CoverageState.EXPIRING_SOON:
            return tr._("Insured, but the policy expires in {days}.", days=days_text(days, tr))
        case CoverageState.NOT_STARTED:
            return tr._(
                "Not insured yet: this policy starts on {date}.",
                date=format_date(policy.start_date, tr.locale),
            )
        case CoverageState.EXPIRED:
            return tr._("Not insured: the policy expired {days} ago.", days=days_text(-days, tr))
        case CoverageState.CANCELLED:
            return tr._("Not insured: this policy was cancelled.")
        case CoverageState.SUSPENDED:
            return tr._("Not insured: this policy is suspended.")


def status_line(tr: Translator, coverage: Coverage) -> str:
    return _MARKS[coverage.state][1] + " " + status_words(tr, coverage)


def _card(tr: Translator, lines: list[str], mark: tuple[Mark, str]) -> Message:
    """The card's text; its status line is the second (after the header)."""
    status = StatusLine(index=1, mark=mark[0], emoji=mark[1])
    return Message("\n".join(lines), new_lookup_buttons(tr), rtl=tr.locale == "ar", status=status)


def _header(tr: Translator, kind: IdKind, masked: str) -> str:
    # The noun names the kind of number: a border number is no identity number.
    match kind:
        case IdKind.NATIONAL_ID:
            return tr._("Health insurance for national ID {masked}", masked=masked)
        case IdKind.IQAMA:
            return tr._("Health insurance for iqama {masked}", masked=masked)
        case IdKind.BORDER:
            return tr._("Health insurance for border number {masked}", masked=masked)


def next_step(tr: Translator, coverage: Coverage) -> str | None:
    """Who to turn to, and what to ask for, when the policy does not simply cover."""
    insurer = coverage.policy.insurer.name(tr.locale)
    match coverage.state:
        case CoverageState.ACTIVE:
            return None
        case CoverageState.EXPIRING_SOON:
            return tr._(
                "What to do: ask your employer or sponsor to renew the policy before it ends, "
                "or {insurer} if you pay for it yourself.",
                insurer=insurer,
            )
        case CoverageState.NOT_STARTED:
            return tr._(
                "What to do: this policy does not cover you until it starts. If you need cover "
                "sooner, ask your employer or sponsor, or {insurer}.",
                insurer=insurer,
            )
        case CoverageState.EXPIRED:
            return tr._(
                "What to do: without valid insurance, treatment may not be covered. To renew "
                "the policy, contact your employer or sponsor, or {insurer} if you pay for it "
                "yourself.",
                insurer=insurer,
            )
        case CoverageState.CANCELLED:
            return tr._(
                "What to do: ask your employer or sponsor, or {insurer}, why the policy was "
                "cancelled, and ask for a new policy. You can also contact the Insurance "
                "Authority (ia.gov.sa).",
                insurer=insurer,
            )
        case CoverageState.SUSPENDED:
            return tr._(
                "What to do: contact {insurer} to find out why the policy is suspended and how "
                "to lift the suspension; your employer or sponsor can help. You can also "
                "contact the Insurance Authority (ia.gov.sa).",
                insurer=insurer,
            )


def _short_state(tr: Translator, state: CoverageState) -> str:
    return {
        CoverageState.ACTIVE: tr._("valid"),
        CoverageState.EXPIRING_SOON: tr._("valid, expiring soon"),
        CoverageState.NOT_STARTED: tr._("not started"),
        CoverageState.EXPIRED: tr._("expired"),
        CoverageState.CANCELLED: tr._("cancelled"),
        CoverageState.SUSPENDED: tr._("suspended"),
    }[state]


def _beneficiary(tr: Translator, kind: BeneficiaryType) -> str:
    # Separate calls: message extraction does not look inside another call's arguments.
    if kind is BeneficiaryType.PRINCIPAL:
        return tr._("principal")
    return tr._("dependent")


def _beneficiary_line(tr: Translator, kind: BeneficiaryType) -> str:
    if kind is BeneficiaryType.PRINCIPAL:
        return tr._("Beneficiary: {value}", value=_beneficiary(tr, kind))
    # Whose policy it is stays unsaid: a dependent's card never shows the principal's number.
    return tr._("Beneficiary: dependent, covered under the principal member's policy")


def _family(tr: Translator, dependents: Sequence[Coverage], shown: int) -> list[str]:
    """The dependents on a principal's policy: masked number, beneficiary type and status,
    one short line each, no names; `shown` of them, then how many more."""
    if not dependents:
        return []
    lines = ["", tr._("Also on this policy:")]
    for dependent in dependents[:shown]:
        policy = dependent.policy
        line = tr._(
            "{masked} ({kind}): {state}",
            masked=policy.id_masked,
            kind=_beneficiary(tr, policy.beneficiary_type),
            state=_short_state(tr, dependent.state),
        )
        lines.append("• " + line)
    hidden = len(dependents) - shown
    if hidden > 0:
        lines.append(tr.ngettext("…and {n} more dependent.", "…and {n} more dependents.", hidden))
    return lines


def _others(tr: Translator, others: Sequence[Coverage], shown: int) -> list[str]:
    if not others:
        return []
    if not shown:
        count = tr.ngettext(
            "This number has {n} other policy.", "This number has {n} other policies.", len(others)
        )
        return ["", count]
    lines = ["", tr._("Other policies for this number:")]
    lines += ["• " + _other_line(tr, other) for other in others[:shown]]
    hidden = len(others) - shown
    if hidden > 0:
        lines.append(tr.ngettext("…and {n} more policy.", "…and {n} more policies.", hidden))
    return lines


def _details(tr: Translator, coverage: Coverage) -> list[str]:
    policy = coverage.policy
    lines = [
        tr._("Insurance company: {name}", name=policy.insurer.name(tr.locale)),
        tr._("Class: {value}", value=policy.policy_class),
        tr._("Policy number: {value}", value=policy.policy_number),
        _beneficiary_line(tr, policy.beneficiary_type),
    ]
    if policy.network:
        lines.append(tr._("Medical network: {value}", value=policy.network))
    if policy.deductible_rate:
        lines.append(tr._("Deductible: {value}", value=policy.deductible_rate))
    lines.append(tr._("Expiry date: {date}", date=format_date(policy.expiry_date, tr.locale)))
    return lines


def _other_line(tr: Translator, other: Coverage) -> str:
    policy = other.policy
    values = {
        "insurer": policy.insurer.name(tr.locale),
        "number": policy.policy_number,
        "state": _short_state(tr, other.state),
    }
    if other.state is CoverageState.NOT_STARTED:
        start = format_date(policy.start_date, tr.locale)
        return tr._("{insurer}, policy {number}: {state}, starts on {date}", date=start, **values)
    end = format_date(policy.expiry_date, tr.locale)
    if other.state is CoverageState.EXPIRED:
        return tr._("{insurer}, policy {number}: expired on {date}", date=end, **values)
    if other.days_remaining < 0:  # cancelled or suspended, and past its end anyway
        return tr._("{insurer}, policy {number}: {state}, ended on {date}", date=end, **values)
    return tr._("{insurer}, policy {number}: {state}, ends on {date}", date=end, **values)


def result_card(
    tr: Translator,
    masked: str,
    kind: IdKind,
    coverages: list[Coverage],
    dependents: Sequence[Coverage] = (),
) -> Message:
    """The card of one lookup: the most relevant policy in full, with the dependents on it
    when the number is its principal, then the other policies in a line each."""
    header = _header(tr, kind, masked)
    if not coverages:
        lines = [
            header,
            _NOT_FOUND[1] + " " + tr._("No health insurance policy is registered for this number."),
            "",
            tr._(
                "If you think this is wrong, ask your employer or sponsor, or your insurance "
                "company. You can also contact the Insurance Authority (ia.gov.sa)."
            ),
        ]
        return _card(tr, lines, _NOT_FOUND)
    first, others = coverages[0], coverages[1:]
    top = [header, status_line(tr, first), "", *_details(tr, first)]
    step = next_step(tr, first)
    bottom = ["", step] if step is not None else []
    # The most of the family and the other policies that fits MAX_CARD_TEXT: the other
    # policies give way first (older and less relevant), then dependents, down to one.
    shown_others, shown_dependents = (
        min(MAX_OTHERS, len(others)),
        min(MAX_DEPENDENTS, len(dependents)),
    )
    while True:
        lines = [
            *top,
            *_family(tr, dependents, shown_dependents),
            *_others(tr, others, shown_others),
            *bottom,
        ]
        if len("\n".join(lines)) <= MAX_CARD_TEXT:
            break
        if shown_others > 0:
            shown_others -= 1
        elif shown_dependents > 1:
            shown_dependents -= 1
        else:
            break  # the policy's own details are never cut
    return _card(tr, lines, _MARKS[first.state])
