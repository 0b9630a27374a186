"""Random event sequences: the engine never raises, always answers, and its state stays valid."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.conversation.events import Action, Button, Command, Other, OtherKind, Text
from bot.conversation.state import Conversation, Step
from tests.conversation.harness import CODE, Person, policy

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
