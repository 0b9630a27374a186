"""The WhatsApp channel as the application runs it (`bot.app.Channel`): the signed webhook on
the application's HTTP app in, the conversation, replies out through the Graph API.

Reminders reach WhatsApp as the approved template WHATSAPP_REMINDER_TEMPLATE
(bot/channels/whatsapp_sender.py, docs/whatsapp-templates.md), so its conversations offer them.
Reminders and broadcasts go out on a Graph API client of their own, at WHATSAPP_RATE: live
replies never wait for a connection behind a broadcast, nor for its pauses.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from bot.app import App
from bot.channels.whatsapp_api import GraphClient
from bot.channels.whatsapp_inbound import CHANNEL, WEBHOOK_PATH, Inbox, webhook_routes
from bot.channels.whatsapp_receipts import BulkReceipts
from bot.channels.whatsapp_render import deliver
from bot.channels.whatsapp_sender import WhatsAppSender, bulk_pace, graph_client
from bot.config import Settings
from bot.conversation import texts
from bot.conversation.replies import Reply
from bot.i18n import translator_for
from bot.reminders.delivery import workers_for
from bot.store.activity import ChatActivity
from bot.store.inbound import InboundSeen

GRAPH_CONNECTIONS = 128


class GraphReplier:
    """Replies and read receipts through the Graph API (`whatsapp_inbound.Replier`)."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def mark_read(self, message_id: str) -> None:
        await self.client.mark_read(message_id)

    async def send(self, wa_id: str, replies: Sequence[Reply]) -> None:
        for reply in replies:
            # Replies carry their direction; Arabic is the only right-to-left language we speak.
            list_label = texts.list_button(translator_for("ar" if reply.rtl else "en"))
            await deliver(self.client, wa_id, reply, list_label)


class WhatsAppBot:
    name = CHANNEL

    def __init__(self, core: App, settings: Settings) -> None:
        wa = settings.whatsapp
        if not wa.enabled or wa.access_token is None:
            raise ValueError("WhatsApp is not configured")
        assert wa.app_secret is not None and wa.verify_token is not None  # checked by config
        self.settings = settings
        # Connections for the calls in flight: each is a round trip of 50-200 ms, and a lookup
        # makes about five (bench/whatsapp.py: 32 capped it near 60 lookups/s at 100 ms).
        self.client = graph_client(settings, GRAPH_CONNECTIONS)
        runtime = core.runtime
        self.inbox = Inbox(
            runtime.conversations(CHANNEL),
            InboundSeen(runtime.db, CHANNEL),
            GraphReplier(self.client),
            activity=ChatActivity(runtime.db, CHANNEL),
            receipts=BulkReceipts(runtime.db),
        )
        # Reminders (templates) and broadcasts, at WHATSAPP_RATE with a connection per send
        # in flight, on their own client.
        self.bulk_client = graph_client(settings, workers_for(wa.rate) + 1)
        self.sender = WhatsAppSender(self.bulk_client, wa.reminder_template)
        core.add_sender(self.sender, bulk_pace(settings))
        self._answering = False
        self._routes = webhook_routes(
            wa.verify_token.get_secret_value(), wa.app_secret.get_secret_value(), self.inbox
        )

    def routes(self) -> Sequence[BaseRoute]:
        return self._routes

    async def start(self) -> None:
        await self.client.initialize()
        await self.bulk_client.initialize()
        self._answering = True

    async def stop(self) -> None:
        self._answering = False
        # The core has stopped reminders and broadcasts already (their messages in flight
        # finished); messages being answered finish here.
        await self.inbox.drain()
        await self.client.shutdown()
        await self.bulk_client.shutdown()

    def health(self) -> str:
        return "ok" if self._answering else "stopped"

    def describe(self, url: str | None) -> str:
        number = self.settings.whatsapp.phone_number_id
        return f"WhatsApp: phone number ID {number}, webhook {url}{WEBHOOK_PATH}."
