"""Shared by the store benchmarks: a generated file of valid policies, one per person."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from bot.domain.identity import luhn_valid

INSURERS = ["BUPA", "TAWUNIYA", "MEDGULF", "MALATH", "WALAA", "SALAMA", "GIG", "SAICO"]
CLASSES = ["VIP", "A", "B", "C"]


def identity_number(index: int) -> str:
    """A distinct valid number per index: prefix, 8 digits, then the Luhn check digit."""
    body = f"{1 + index % 2}{index // 2:08d}"
    return next(body + str(c) for c in range(10) if luhn_valid(body + str(c)))


def write_policies(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "id_number",
                "insurer",
                "policy_number",
                "policy_class",
                "beneficiary_type",
                "start_date",
                "expiry_date",
                "member_name",
                "network",
                "deductible_rate",
                "max_limit",
            ]
        )
        for i in range(rows):
            month = rng.randint(1, 12)
            writer.writerow(
                [
                    identity_number(i),
                    rng.choice(INSURERS),
                    f"P-{i:08d}",
                    rng.choice(CLASSES),
                    "principal" if i % 3 else "dependent",
                    f"2026-{month:02d}-01",
                    f"2027-{month:02d}-{rng.randint(1, 28):02d}",
                    f"Member {i}",
                    "Gold",
                    "20%",
                    "500000",
                ]
            )
