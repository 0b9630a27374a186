"""The result card: what a lookup found, short and in the person's language."""

from __future__ import annotations

from bot.conversation.replies import Message
from bot.conversation.texts import new_lookup_buttons
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


def result_card(tr: Translator, masked: str, coverages: list[Coverage]) -> Message:
    header = tr._("Health insurance for number {masked}", masked=masked)
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
        for other in others:
            lines.append(
                "• "
                + tr._(
                    "{insurer}, policy {number}: {state}, ends {date}",
                    insurer=other.policy.insurer.name(tr.locale),
                    number=other.policy.policy_number,
                    state=_short_state(tr, other.state),
                    date=format_date(other.policy.expiry_date, tr.locale),
                )
            )
    hidden = len(coverages) - 1 - len(others)
    if hidden > 0:
        lines.append(tr.ngettext("…and {n} more policy.", "…and {n} more policies.", hidden))
    return Message("\n".join(lines), new_lookup_buttons(tr), rtl=tr.locale == "ar")
