"""WhatsApp's status webhooks (`statuses[]`): what became of the messages the bot sent.

Only bulk messages (reminders, broadcasts) keep their wamid, so only their delivery records
change: delivered, read, or failed with Meta's error code. A failure with 131026
(undeliverable) stops the person's subscriptions, exactly as the same refusal does when it
comes back from the send itself (Meta reports it either way). Statuses never produce a reply.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.channels.whatsapp_sender import CHANNEL, UNDELIVERABLE
from bot.store.database import Database
from bot.store.receipts import Receipt, Receipts, ReceiptStatus
from bot.store.subscriptions import StopReason, SubscriptionStore

log = logging.getLogger(__name__)


class BulkReceipts:
    """Records a post's statuses (`whatsapp_inbound.StatusRecorder`)."""

    def __init__(self, db: Database) -> None:
        self.receipts = Receipts(db, CHANNEL)
        self.subscriptions = SubscriptionStore(db)

    async def record(self, receipts: Sequence[Receipt]) -> None:
        await self.receipts.record([r for r in receipts if r.status is not ReceiptStatus.FAILED])
        for receipt in receipts:
            if receipt.status is not ReceiptStatus.FAILED:
                continue
            chat = await self.receipts.record_failure(receipt)
            if chat is not None and receipt.code == UNDELIVERABLE:
                stopped = await self.subscriptions.deactivate_chat(
                    CHANNEL, chat, StopReason.BLOCKED
                )
                log.info(
                    "a WhatsApp message was undeliverable: %d subscription(s) stopped", stopped
                )
