"""What both backends' import writes take and give: staged rows in, the outcome out."""

from __future__ import annotations

from dataclasses import dataclass, field

StagedRow = tuple[object, ...]  # (line, *POLICY_COLUMNS values)


@dataclass
class WriteOutcome:
    """What writing a staged file did (or, for a dry run, would do)."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    removal_skipped: bool = False
    # (line, first line with the same identity number and policy number)
    duplicates: list[tuple[int, int]] = field(default_factory=list)
