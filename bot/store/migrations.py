"""Schema versions, oldest first, for each backend. Never edit a released step: append a new
one, to both lists, under the same number.

Step N brings the database to version N: SQLite's `PRAGMA user_version`, PostgreSQL's
`schema_version` table. The two schemas hold the same tables, columns and keys with the same
representation (tests/store/test_database.py compares them): dates and times as ISO text,
flags as 0/1 integers, HMACs as BLOB / bytea, epoch seconds as REAL / double precision (a
PostgreSQL `real` is 4 bytes: too coarse for seconds since 1970).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: insurers and policies. Identity numbers only as HMAC (BLOB) plus the masked form.
    (
        """
        CREATE TABLE insurers (
            code    TEXT PRIMARY KEY,
            name_ar TEXT NOT NULL,
            name_en TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE policies (
            id                 INTEGER PRIMARY KEY,
            id_hmac            BLOB NOT NULL,
            id_masked          TEXT NOT NULL,
            insurer_code       TEXT NOT NULL REFERENCES insurers(code),
            policy_number      TEXT NOT NULL,
            policy_class       TEXT NOT NULL,
            beneficiary_type   TEXT NOT NULL CHECK (beneficiary_type IN ('principal', 'dependent')),
            start_date         TEXT NOT NULL,
            expiry_date        TEXT NOT NULL,
            status             TEXT NOT NULL DEFAULT 'active'
                               CHECK (status IN ('active', 'cancelled', 'suspended')),
            member_name        TEXT,
            network            TEXT,
            deductible_rate    TEXT,
            max_limit          TEXT,
            beneficiary_number TEXT,
            sponsor_name       TEXT,
            updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
            UNIQUE (id_hmac, policy_number)
        )
        """,
        "CREATE INDEX policies_expiry ON policies (expiry_date)",
    ),
    # 2: conversation state per (channel, chat) and the audit log of completed lookups.
    (
        """
        CREATE TABLE conversations (
            channel    TEXT NOT NULL,
            chat_id    TEXT NOT NULL,
            state      TEXT NOT NULL,
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
            PRIMARY KEY (channel, chat_id)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE audit_lookups (
            id        INTEGER PRIMARY KEY,
            at        TEXT NOT NULL,
            channel   TEXT NOT NULL,
            chat_hash BLOB NOT NULL,
            id_hmac   BLOB NOT NULL,
            outcome   TEXT NOT NULL
        )
        """,
        "CREATE INDEX audit_lookups_at ON audit_lookups (at)",
    ),
    # 3: reminder subscriptions (consent records), the reminders sent for them, daily passes,
    # admin broadcasts with one row per recipient, and leases that keep two processes from
    # delivering the same job at once.
    (
        # A stopped subscription stays as the record of when consent was given and withdrawn.
        """
        CREATE TABLE subscriptions (
            id           INTEGER PRIMARY KEY,
            channel      TEXT NOT NULL,
            chat_id      TEXT NOT NULL,
            id_hmac      BLOB NOT NULL,
            id_masked    TEXT NOT NULL,
            locale       TEXT NOT NULL,
            consented_at TEXT NOT NULL,
            active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            stopped_at   TEXT,
            stop_reason  TEXT CHECK (stop_reason IN ('user', 'blocked'))
        )
        """,
        "CREATE UNIQUE INDEX subscriptions_active_person "
        "ON subscriptions (channel, chat_id, id_hmac) WHERE active = 1",
        "CREATE INDEX subscriptions_active_hmac ON subscriptions (id_hmac) WHERE active = 1",
        # One row per (subscription, expiry date, threshold): the UNIQUE key is what makes a
        # pass idempotent. `due_on` is the pass that sends it, `seq` the order within it.
        """
        CREATE TABLE reminders (
            subscription_id INTEGER NOT NULL REFERENCES subscriptions(id),
            expiry_date     TEXT NOT NULL,
            threshold       INTEGER NOT NULL,
            due_on          TEXT NOT NULL,
            seq             INTEGER NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'sending', 'sent', 'failed', 'blocked', 'skipped')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            reason          TEXT,
            updated_at      TEXT NOT NULL,
            PRIMARY KEY (subscription_id, expiry_date, threshold)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX reminders_due ON reminders (due_on, seq)",
        "CREATE INDEX reminders_expiry ON reminders (expiry_date)",
        """
        CREATE TABLE reminder_passes (
            day         TEXT PRIMARY KEY,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            due         INTEGER NOT NULL DEFAULT 0,
            sent        INTEGER NOT NULL DEFAULT 0,
            failed      INTEGER NOT NULL DEFAULT 0,
            blocked     INTEGER NOT NULL DEFAULT 0,
            skipped     INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE broadcasts (
            id           INTEGER PRIMARY KEY,
            created_at   TEXT NOT NULL,
            created_by   TEXT NOT NULL,
            audience     TEXT NOT NULL,
            template     TEXT CHECK (template IN ('expiry')),
            text         TEXT,
            status       TEXT NOT NULL DEFAULT 'preparing'
                         CHECK (status IN ('preparing', 'running', 'done', 'cancelled')),
            total        INTEGER NOT NULL DEFAULT 0,
            sent         INTEGER NOT NULL DEFAULT 0,
            failed       INTEGER NOT NULL DEFAULT 0,
            blocked      INTEGER NOT NULL DEFAULT 0,
            skipped      INTEGER NOT NULL DEFAULT 0,
            resent       INTEGER NOT NULL DEFAULT 0,
            finished_at  TEXT,
            progress_ref TEXT,
            CHECK ((template IS NULL) <> (text IS NULL))
        )
        """,
        "CREATE INDEX broadcasts_status ON broadcasts (status)",
        # subscription_id is NULL for a typed text: one message per chat, not per person.
        """
        CREATE TABLE broadcast_recipients (
            broadcast_id    INTEGER NOT NULL REFERENCES broadcasts(id),
            seq             INTEGER NOT NULL,
            channel         TEXT NOT NULL,
            chat_id         TEXT NOT NULL,
            subscription_id INTEGER REFERENCES subscriptions(id),
            locale          TEXT NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'sending', 'sent', 'failed', 'blocked', 'skipped')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            resent          INTEGER NOT NULL DEFAULT 0,
            reason          TEXT,
            updated_at      TEXT,
            PRIMARY KEY (broadcast_id, seq)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX broadcast_recipients_status ON broadcast_recipients (broadcast_id, status)",
        """
        CREATE TABLE leases (
            name       TEXT PRIMARY KEY,
            owner      TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    # 4: events counted by the limits that guard lookups (per client address, per identity
    # number, per chat's challenges, the web chat's overall rate). Keys are pseudonymous.
    (
        """
        CREATE TABLE limit_events (
            key TEXT NOT NULL,
            at  REAL NOT NULL
        )
        """,
        "CREATE INDEX limit_events_key_at ON limit_events (key, at)",
        "CREATE INDEX limit_events_at ON limit_events (at)",
    ),
    # 5: inbound message ids already handled (WhatsApp retries webhooks and does not promise
    # order or uniqueness): a repeat is skipped, after a restart too.
    (
        """
        CREATE TABLE inbound_seen (
            channel    TEXT NOT NULL,
            message_id TEXT NOT NULL,
            at         REAL NOT NULL,
            PRIMARY KEY (channel, message_id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX inbound_seen_at ON inbound_seen (at)",
    ),
    # 6: WhatsApp's 24-hour window and delivery receipts of bulk messages.
    # - chat_activity: when each chat last wrote to us (a typed broadcast reaches a WhatsApp
    #   person only within 24 hours of it). Keyed by the chat like `conversations`, never by
    #   an identity number, and pruned once older than any window: no lasting register of who
    #   wrote.
    # - message_id on each delivery record: the platform's id of the message sent (WhatsApp's
    #   wamid), so its status webhooks find the record; `receipt` is the furthest status
    #   heard of, with Meta's error code when it failed.
    # - broadcasts.outside_window: the final count of those the window left out.
    (
        """
        CREATE TABLE chat_activity (
            channel         TEXT NOT NULL,
            chat_id         TEXT NOT NULL,
            last_inbound_at REAL NOT NULL,
            PRIMARY KEY (channel, chat_id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX chat_activity_at ON chat_activity (last_inbound_at)",
        "ALTER TABLE broadcast_recipients ADD COLUMN message_id TEXT",
        "ALTER TABLE broadcast_recipients ADD COLUMN receipt TEXT "
        "CHECK (receipt IN ('delivered', 'read', 'failed'))",
        "ALTER TABLE broadcast_recipients ADD COLUMN receipt_code INTEGER",
        "ALTER TABLE reminders ADD COLUMN message_id TEXT",
        "ALTER TABLE reminders ADD COLUMN receipt TEXT "
        "CHECK (receipt IN ('delivered', 'read', 'failed'))",
        "ALTER TABLE reminders ADD COLUMN receipt_code INTEGER",
        "CREATE INDEX broadcast_recipients_message ON broadcast_recipients (message_id) "
        "WHERE message_id IS NOT NULL",
        "CREATE INDEX reminders_message ON reminders (message_id) WHERE message_id IS NOT NULL",
        # Each channel's recipients are delivered in a lane of their own, paged by channel.
        "CREATE INDEX broadcast_recipients_channel "
        "ON broadcast_recipients (broadcast_id, channel, seq)",
        "ALTER TABLE broadcasts ADD COLUMN outside_window INTEGER NOT NULL DEFAULT 0",
    ),
    # 7: a policy's members by insurer and policy number: a principal's card lists the
    # dependents on the same policy (PolicyStore.dependents_of).
    ("CREATE INDEX policies_policy ON policies (insurer_code, policy_number)",),
    # 8: several processes deliver one broadcast (bot instances, the CLI). A recipient is
    # claimed by one of them before it is queued there (`claimed_by`, until `claimed_until` in
    # epoch seconds on the database's clock, renewed while it works), so they split the list
    # instead of racing for each row; a claim that lapses (its process died) is taken by
    # another. `send_pace`: the next free send time of each channel, shared by every process,
    # so that BROADCAST_RATE and WHATSAPP_RATE hold for all of them together.
    (
        "ALTER TABLE broadcast_recipients ADD COLUMN claimed_by TEXT",
        "ALTER TABLE broadcast_recipients ADD COLUMN claimed_until REAL",
        """
        CREATE TABLE send_pace (
            channel TEXT PRIMARY KEY,
            next_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    # 9: the policies' unique key (identity HMAC, policy number) becomes an index of its own,
    # no longer a table constraint, so a first load can drop it with the other indexes and
    # build it after the rows are in (PolicyStore.write_import): one sort per index instead of
    # inserting a million rows in key order (1M rows: 5.1 s → 3.8 s). SQLite cannot drop a
    # constraint: the table is made again, same columns in the same order, same rows and ids.
    (
        """
        CREATE TABLE policies_new (
            id                 INTEGER PRIMARY KEY,
            id_hmac            BLOB NOT NULL,
            id_masked          TEXT NOT NULL,
            insurer_code       TEXT NOT NULL REFERENCES insurers(code),
            policy_number      TEXT NOT NULL,
            policy_class       TEXT NOT NULL,
            beneficiary_type   TEXT NOT NULL CHECK (beneficiary_type IN ('principal', 'dependent')),
            start_date         TEXT NOT NULL,
            expiry_date        TEXT NOT NULL,
            status             TEXT NOT NULL DEFAULT 'active'
                               CHECK (status IN ('active', 'cancelled', 'suspended')),
            member_name        TEXT,
            network            TEXT,
            deductible_rate    TEXT,
            max_limit          TEXT,
            beneficiary_number TEXT,
            sponsor_name       TEXT,
            updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        )
        """,
        "INSERT INTO policies_new SELECT * FROM policies ORDER BY id",
        "DROP TABLE policies",
        "ALTER TABLE policies_new RENAME TO policies",
        "CREATE UNIQUE INDEX policies_person_policy ON policies (id_hmac, policy_number)",
        "CREATE INDEX policies_expiry ON policies (expiry_date)",
        "CREATE INDEX policies_policy ON policies (insurer_code, policy_number)",
    ),
]


# PostgreSQL: the same steps. `INTEGER PRIMARY KEY` (SQLite's rowid) becomes an identity column,
# WITHOUT ROWID tables plain tables, and the defaults compute the same UTC text.
_PG_NOW = """to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
_PG_ID = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

POSTGRES_MIGRATIONS: list[tuple[str, ...]] = [
    # 1: insurers and policies.
    (
        """
        CREATE TABLE insurers (
            code    TEXT PRIMARY KEY,
            name_ar TEXT NOT NULL,
            name_en TEXT NOT NULL
        )
        """,
        f"""
        CREATE TABLE policies (
            id                 {_PG_ID},
            id_hmac            BYTEA NOT NULL,
            id_masked          TEXT NOT NULL,
            insurer_code       TEXT NOT NULL REFERENCES insurers(code),
            policy_number      TEXT NOT NULL,
            policy_class       TEXT NOT NULL,
            beneficiary_type   TEXT NOT NULL CHECK (beneficiary_type IN ('principal', 'dependent')),
            start_date         TEXT NOT NULL,
            expiry_date        TEXT NOT NULL,
            status             TEXT NOT NULL DEFAULT 'active'
                               CHECK (status IN ('active', 'cancelled', 'suspended')),
            member_name        TEXT,
            network            TEXT,
            deductible_rate    TEXT,
            max_limit          TEXT,
            beneficiary_number TEXT,
            sponsor_name       TEXT,
            updated_at         TEXT NOT NULL DEFAULT ({_PG_NOW}),
            UNIQUE (id_hmac, policy_number)
        )
        """,
        "CREATE INDEX policies_expiry ON policies (expiry_date)",
    ),
    # 2: conversation state and the audit log.
    (
        f"""
        CREATE TABLE conversations (
            channel    TEXT NOT NULL,
            chat_id    TEXT NOT NULL,
            state      TEXT NOT NULL,
            updated_at TEXT NOT NULL DEFAULT ({_PG_NOW}),
            PRIMARY KEY (channel, chat_id)
        )
        """,
        f"""
        CREATE TABLE audit_lookups (
            id        {_PG_ID},
            at        TEXT NOT NULL,
            channel   TEXT NOT NULL,
            chat_hash BYTEA NOT NULL,
            id_hmac   BYTEA NOT NULL,
            outcome   TEXT NOT NULL
        )
        """,
        "CREATE INDEX audit_lookups_at ON audit_lookups (at)",
    ),
    # 3: subscriptions, reminders, passes, broadcasts and their recipients, leases.
    (
        f"""
        CREATE TABLE subscriptions (
            id           {_PG_ID},
            channel      TEXT NOT NULL,
            chat_id      TEXT NOT NULL,
            id_hmac      BYTEA NOT NULL,
            id_masked    TEXT NOT NULL,
            locale       TEXT NOT NULL,
            consented_at TEXT NOT NULL,
            active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            stopped_at   TEXT,
            stop_reason  TEXT CHECK (stop_reason IN ('user', 'blocked'))
        )
        """,
        "CREATE UNIQUE INDEX subscriptions_active_person "
        "ON subscriptions (channel, chat_id, id_hmac) WHERE active = 1",
        "CREATE INDEX subscriptions_active_hmac ON subscriptions (id_hmac) WHERE active = 1",
        """
        CREATE TABLE reminders (
            subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
            expiry_date     TEXT NOT NULL,
            threshold       INTEGER NOT NULL,
            due_on          TEXT NOT NULL,
            seq             INTEGER NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'sending', 'sent', 'failed', 'blocked', 'skipped')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            reason          TEXT,
            updated_at      TEXT NOT NULL,
            PRIMARY KEY (subscription_id, expiry_date, threshold)
        )
        """,
        "CREATE INDEX reminders_due ON reminders (due_on, seq)",
        "CREATE INDEX reminders_expiry ON reminders (expiry_date)",
        """
        CREATE TABLE reminder_passes (
            day         TEXT PRIMARY KEY,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            due         INTEGER NOT NULL DEFAULT 0,
            sent        INTEGER NOT NULL DEFAULT 0,
            failed      INTEGER NOT NULL DEFAULT 0,
            blocked     INTEGER NOT NULL DEFAULT 0,
            skipped     INTEGER NOT NULL DEFAULT 0
        )
        """,
        f"""
        CREATE TABLE broadcasts (
            id           {_PG_ID},
            created_at   TEXT NOT NULL,
            created_by   TEXT NOT NULL,
            audience     TEXT NOT NULL,
            template     TEXT CHECK (template IN ('expiry')),
            text         TEXT,
            status       TEXT NOT NULL DEFAULT 'preparing'
                         CHECK (status IN ('preparing', 'running', 'done', 'cancelled')),
            total        INTEGER NOT NULL DEFAULT 0,
            sent         INTEGER NOT NULL DEFAULT 0,
            failed       INTEGER NOT NULL DEFAULT 0,
            blocked      INTEGER NOT NULL DEFAULT 0,
            skipped      INTEGER NOT NULL DEFAULT 0,
            resent       INTEGER NOT NULL DEFAULT 0,
            finished_at  TEXT,
            progress_ref TEXT,
            CHECK ((template IS NULL) <> (text IS NULL))
        )
        """,
        "CREATE INDEX broadcasts_status ON broadcasts (status)",
        """
        CREATE TABLE broadcast_recipients (
            broadcast_id    BIGINT NOT NULL REFERENCES broadcasts(id),
            seq             INTEGER NOT NULL,
            channel         TEXT NOT NULL,
            chat_id         TEXT NOT NULL,
            subscription_id BIGINT REFERENCES subscriptions(id),
            locale          TEXT NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'sending', 'sent', 'failed', 'blocked', 'skipped')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            resent          INTEGER NOT NULL DEFAULT 0,
            reason          TEXT,
            updated_at      TEXT,
            PRIMARY KEY (broadcast_id, seq)
        )
        """,
        "CREATE INDEX broadcast_recipients_status ON broadcast_recipients (broadcast_id, status)",
        """
        CREATE TABLE leases (
            name       TEXT PRIMARY KEY,
            owner      TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )
        """,
    ),
    # 4: events counted by the limits.
    (
        """
        CREATE TABLE limit_events (
            key TEXT NOT NULL,
            at  DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE INDEX limit_events_key_at ON limit_events (key, at)",
        "CREATE INDEX limit_events_at ON limit_events (at)",
    ),
    # 5: inbound message ids already handled.
    (
        """
        CREATE TABLE inbound_seen (
            channel    TEXT NOT NULL,
            message_id TEXT NOT NULL,
            at         DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, message_id)
        )
        """,
        "CREATE INDEX inbound_seen_at ON inbound_seen (at)",
    ),
    # 6: WhatsApp's 24-hour window and delivery receipts of bulk messages.
    (
        """
        CREATE TABLE chat_activity (
            channel         TEXT NOT NULL,
            chat_id         TEXT NOT NULL,
            last_inbound_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, chat_id)
        )
        """,
        "CREATE INDEX chat_activity_at ON chat_activity (last_inbound_at)",
        "ALTER TABLE broadcast_recipients ADD COLUMN message_id TEXT",
        "ALTER TABLE broadcast_recipients ADD COLUMN receipt TEXT "
        "CHECK (receipt IN ('delivered', 'read', 'failed'))",
        "ALTER TABLE broadcast_recipients ADD COLUMN receipt_code INTEGER",
        "ALTER TABLE reminders ADD COLUMN message_id TEXT",
        "ALTER TABLE reminders ADD COLUMN receipt TEXT "
        "CHECK (receipt IN ('delivered', 'read', 'failed'))",
        "ALTER TABLE reminders ADD COLUMN receipt_code INTEGER",
        "CREATE INDEX broadcast_recipients_message ON broadcast_recipients (message_id) "
        "WHERE message_id IS NOT NULL",
        "CREATE INDEX reminders_message ON reminders (message_id) WHERE message_id IS NOT NULL",
        "CREATE INDEX broadcast_recipients_channel "
        "ON broadcast_recipients (broadcast_id, channel, seq)",
        "ALTER TABLE broadcasts ADD COLUMN outside_window INTEGER NOT NULL DEFAULT 0",
    ),
    # 7: a policy's members by insurer and policy number.
    ("CREATE INDEX policies_policy ON policies (insurer_code, policy_number)",),
    # 8: recipients claimed by one of the processes delivering a broadcast; each channel's
    # next free send time, shared by them.
    (
        "ALTER TABLE broadcast_recipients ADD COLUMN claimed_by TEXT",
        "ALTER TABLE broadcast_recipients ADD COLUMN claimed_until DOUBLE PRECISION",
        """
        CREATE TABLE send_pace (
            channel TEXT PRIMARY KEY,
            next_at DOUBLE PRECISION NOT NULL
        )
        """,
    ),
    # 9: the policies' unique key as an index of its own, as on SQLite (a first load drops
    # and rebuilds it with the other indexes either way).
    (
        "ALTER TABLE policies DROP CONSTRAINT policies_id_hmac_policy_number_key",
        "CREATE UNIQUE INDEX policies_person_policy ON policies (id_hmac, policy_number)",
    ),
]
