"""Schema versions, oldest first. Never edit a released step: append a new one.

Step N brings the database to `PRAGMA user_version = N`.
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
]
