"""Expiry reminders with consent, and admin broadcasts that lose nobody.

Modules:
    texts           reminder and report messages (i18n), stop-button data
    pacing          overall rate (token bucket), flood-control pause, one message/s per chat
    sending         the `Sender` protocol and its typed errors
    delivery        the worker pool that drains a persisted queue, losing nobody
    reminder_pass   the daily pass
    broadcast       preview / create / run / resume / cancel / list
    service         everything above wired for a running bot (scheduled by bot/app.py)
    cli             `python -m bot remind`, `python -m bot broadcast`

Elsewhere, by the layering (ARCHITECTURE.md): the pure values in bot/domain (`schedule`, which
threshold is due on a day; `audience`, who a broadcast goes to and what it says), and the
Telegram side in bot/channels (`telegram_sender`, the Telegram `Sender`), and the schedule in
bot/app.py (the application's scheduler). Reminders import neither python-telegram-bot nor
bot.channels.

Decisions where the issue is silent:
- Thresholds are REMINDER_DAYS plus the expiry day (0). A threshold whose day was on or before
  the day of consent is not sent (someone subscribing with 20 days left gets the 7-day one, not
  a "20 days left" message the next morning). Nothing is sent once a policy has expired: a
  missed expiry-day message is not sent late.
- The policy reminders follow is the person's *active* policy with the latest expiry; a
  cancelled or suspended one gets no reminders, a renewal (a new row or the same policy number
  with a later date) moves them. The claim just before sending re-checks both the opt-out and
  that this is still the current expiry.
- A failed reminder (retries exhausted) is tried again by the next day's pass while its
  threshold is still the nearest; a blocked chat never again.
- Messages left `sending` by a process that died are sent again on resume: that is the only way
  to skip nobody, and the only way anyone can get a duplicate (counted as `resent`). A time-out
  is retried like any network error, so it can also duplicate the one message concerned.
- A typed broadcast goes once per chat (with a "stop all" button), the built-in reminder once
  per subscription (with that subscription's stop button). Recipients are fixed when the admin
  confirms; an empty audience records nothing.
- Audiences are active subscribers only; "expiring:N" counts today as day 0 and includes day N;
  "expired" means the followed policy's expiry is before today.
- Stopped subscriptions are kept (active = 0, when, why) as the record of consent withdrawn.
- Two processes never deliver the same job: each broadcast and the daily pass hold a lease in
  SQLite, which lapses when the holder stops renewing it or at once when the holder was a dead
  process on this machine.
- Writes of several statements are one transaction of the store (scheduling a day, creating a
  broadcast with its recipients, closing or cancelling one with its counts, taking a lease);
  claiming and recording one delivery are single statements. Units of work are isolated from
  each other, so a failing one never takes another task's write with it.
"""
