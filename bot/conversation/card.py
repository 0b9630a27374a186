"""The result card: what a lookup found, short and in the person's language."""

from __future__ import annotations

from bot.conversation.replies import Message
from bot.conversation.texts import new_lookup_buttons
from bot.domain.identity import IdKind
from bot.domain.policy import BeneficiaryType, Coverage, CoverageState
from bot.i18n import Translator, days_text, format_date

# How many further policies to list under the most relevant one.
MAX_OTHERS = 4


def status_line(tr: Translator, coverage: Coverage) -> str:
    days = coverage.days_remaining
    policy = coverage.policy
    match coverage.state:
        case CoverageState.ACTIVE:
            return "✅ " + tr._(
                "Insured: the policy is valid for {days} more.", days=days_text(days, tr)
            )
        case CoverageState.EXPIRING_SOON if days == 0:
            return "⚠️ " + tr._("Insured, but the policy expires today.")
        case CoverageState.EXPIRING_SOON:
            return "⚠️ " + tr._(
                "Insured, but the policy expires in {days}.", days=days_text(days, tr)
            )
        case CoverageState.NOT_STARTED:
            return "🕒 " + tr._(
                "Not insured yet: this policy starts on {date}.",
                date=format_date(policy.start_date, tr.locale),
            )
        case CoverageState.EXPIRED:
            return "❌ " + tr._(
                "Not insured: the policy expired {days} ago.", days=days_text(-days, tr)
            )
        case CoverageState.CANCELLED:
            return "❌ " + tr._("Not insured: this policy was cancelled.")
        case CoverageState.SUSPENDED:
            return "⛔ " + tr._("Not insured: this policy is suspended.")


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
                "This policy does not cover you before that day. If you need cover sooner, "
                "ask your employer or sponsor, or {insurer}.",
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


def _details(tr: Translator, coverage: Coverage) -> list[str]:
    policy = coverage.policy
    lines = [
        tr._("Insurance company: {name}", name=policy.insurer.name(tr.locale)),
        tr._("Class: {value}", value=policy.policy_class),
        tr._("Policy number: {value}", value=policy.policy_number),
        tr._("Beneficiary: {value}", value=_beneficiary(tr, policy.beneficiary_type)),
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


def result_card(tr: Translator, masked: str, kind: IdKind, coverages: list[Coverage]) -> Message:
    header = _header(tr, kind, masked)
    if not coverages:
        text = "\n".join(
            [
                header,
                "❌ " + tr._("No health insurance policy is registered for this number."),
                "",
                tr._(
                    "If you think this is wrong, ask your employer or sponsor, or your insurance "
                    "company. You can also contact the Insurance Authority (ia.gov.sa)."
                ),
            ]
        )
        return Message(text, new_lookup_buttons(tr), rtl=tr.locale == "ar")
    first, others = coverages[0], coverages[1 : 1 + MAX_OTHERS]
    lines = [header, status_line(tr, first), "", *_details(tr, first)]
    if others:
        lines += ["", tr._("Other policies for this number:")]
        lines += ["• " + _other_line(tr, other) for other in others]
    hidden = len(coverages) - 1 - len(others)
    if hidden > 0:
        lines.append(tr.ngettext("…and {n} more policy.", "…and {n} more policies.", hidden))
    step = next_step(tr, first)
    if step is not None:
        lines += ["", step]
    return Message("\n".join(lines), new_lookup_buttons(tr), rtl=tr.locale == "ar")
