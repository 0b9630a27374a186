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
]
