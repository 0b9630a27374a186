"""Random event sequences: the engine never raises, always answers, and its state stays valid."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.conversation.events import Action, Button, Command, Other, OtherKind, Text
from bot.conversation.state import Conversation, Step
from tests.conversation.harness import CODE, FakeConsent, Person, buttons_of, policy

NUMBERS = ["1000000008", "2000000006", "3012345678", "1067890127", "1000000009", "١٠٠٠٠٠٠٠٠٨"]

actions: st.SearchStrategy[Action] = st.one_of(
    st.sampled_from([Text(n) for n in NUMBERS]),
    st.sampled_from([Text(CODE), Text("000000"), Text("١٢٣٤٥٦"), Text(""), Text("x" * 300)]),
    st.text(max_size=30).map(Text),
    st.sampled_from(
        [
            Button(d)
            for d in (
                "path:citizen",
                "path:resident",
                "switch:citizen",
                "switch:resident",
                "about",
                "lang:en",
                "lang:ar",
                "lang:xx",
                "new_code",
                "new_lookup",
                "path:",
                "switch:x",
            )
        ]
    ),
    st.text(max_size=70).map(Button),
    st.sampled_from(["start", "cancel", "help", "language", "stop", "x"]).map(Command),
    st.sampled_from(list(OtherKind)).map(Other),
)
steps = st.lists(st.tuples(actions, st.sampled_from([0, 1, 30, 200, 700])), max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_sequences(sequence: list[tuple[Action, int]]) -> None:
    async def run() -> None:
        person = Person(
            {"1000000008": [policy("P", 10)], "2000000006": [policy("R", -3)]},
            lookups_per_hour=3,
        )
        for action, wait in sequence:
            person.now += wait
            replies = await person.send(action)
            assert replies, f"no reply to {action!r} at {person.conv.step}"
            # Valid state: it survives validation, and the step's invariants hold.
            Conversation.model_validate(person.conv.model_dump())
            if person.conv.step is Step.CAPTCHA:
                assert person.conv.challenge is not None

    asyncio.run(run())


reminder_actions: st.SearchStrategy[Action] = st.one_of(
    actions,
    st.sampled_from(
        [Button(d) for d in ("stop_all", "stop_sub:1", "stop_sub:2", "stop_sub:x", "remind:")]
    ),
    st.sampled_from(["reminders", "stop"]).map(Command),
    st.sampled_from([Text("إيقاف"), Text("stop"), Text("ايقـاف")]),
)


# A whole lookup (number, then the code) as one step, so results with offers come often.
lookups = st.sampled_from(["1000000008", "3012345678", "2000000006"]).map(
    lambda n: [Text(n), Text(CODE)]
)
moves = st.one_of(reminder_actions.map(lambda a: [a]), lookups)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(moves, st.booleans()), max_size=20))
def test_random_sequences_with_reminders(sequence: list[tuple[list[Action], bool]]) -> None:
    """With reminder consent: the «Remind me» button of the latest card, taps on it, stops.
    Never more than the limit, never two for one number, every action answered."""

    async def run() -> None:
        consent = FakeConsent(limit=2)
        person = Person(
            {
                "1000000008": [policy("P", 10)],
                "3012345678": [policy("V", 40)],
                "2000000006": [policy("R", -3)],
            },
            consent=consent,
        )
        for move, tap_remind in sequence:
            for action in move:
                replies = await person.send(action)
                assert replies, f"no reply to {action!r} at {person.conv.step}"
            offers = [b for r in replies for b in buttons_of(r) if b.startswith("remind:")]
            if offers and tap_remind:
                assert await person.send(Button(offers[0]))
            mine = consent.active("chat-1")
            assert len(mine) <= 2
            assert len({s.id_hmac for s in mine}) == len(mine)
            Conversation.model_validate(person.conv.model_dump())

    asyncio.run(run())
