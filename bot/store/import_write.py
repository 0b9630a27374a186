"""What both backends' import writes take and give: staged rows in, the outcome out; and how
both notice the rows of a file that repeat an earlier row's key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

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


key_hash = hash  # of (identity HMAC, policy number); the tests make it collide


class RepeatedKeys:
    """Rows with the identity number and policy number of an earlier row, noticed as the
    batches pass on their way into the store. Only each key's hash is kept (a set: a fraction
    of the memory of the keys), checked a batch at a time with set operations: 0.3 s of this
    process's CPU per million rows, where a dict of first lines kept up to date cost 0.45-0.6
    s (its lookups miss the CPU's caches once it is large), and a GROUP BY over the copied
    rows afterwards 0.7 s. A repeated hash makes its row's key a candidate; which lines really
    share a candidate key, and which came first, the store reads back from the rows it copied
    (`later_rows`), so a mere collision of hashes is never reported."""

    def __init__(self, columns: Sequence[str], key: Sequence[str]) -> None:
        """`columns`: those of a staged row after its line; `key`: the two naming a policy."""
        self._key = itemgetter(*(1 + list(columns).index(c) for c in key))
        self._seen: set[int] = set()
        self._candidates: set[tuple[object, ...]] = set()
        self.noted = 0  # rows
        self.last = 0  # the last row's line

    def note(self, batch: list[StagedRow]) -> None:
        if not batch:
            return
        for_key = self._key
        hashes = set(map(key_hash, map(for_key, batch)))
        if len(hashes) == len(batch) and self._seen.isdisjoint(hashes):
            self._seen |= hashes  # nearly always
        else:  # a hash seen before (in this batch or an earlier one): row by row
            for row in batch:
                key = for_key(row)
                hashed = key_hash(key)
                if hashed in self._seen:
                    self._candidates.add(key)
                else:
                    self._seen.add(hashed)
        self.noted += len(batch)
        self.last = int(batch[-1][0])  # type: ignore[call-overload]

    def candidate_keys(self) -> list[tuple[object, ...]]:
        """The keys that may repeat, once every row was noted (the hashes are let go)."""
        self._seen = set()
        return list(self._candidates)


def later_rows(found: Iterable[Sequence[object]]) -> list[tuple[int, int]]:
    """(line, first line) of every later row of a key, from the copied rows that have a
    candidate key, as (line, *key) in line order."""
    first: dict[tuple[object, ...], int] = {}
    duplicates = []
    for row in found:
        line = int(row[0])  # type: ignore[call-overload]
        earliest = first.setdefault(tuple(row[1:]), line)
        if earliest != line:
            duplicates.append((line, earliest))
    return duplicates
