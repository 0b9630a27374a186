"""Import a CSV file of policies: read, validate, stage and write in one transaction."""

from __future__ import annotations

import contextlib
import csv
import gc
import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bot.importer.rows import (
    KNOWN_COLUMNS,
    REQUIRED_COLUMNS,
    InsurerIndex,
    RowError,
    RowValidator,
)
from bot.store.database import Database
from bot.store.insurers import all_insurers
from bot.store.policies import PolicyStore, StagedRow

BATCH_ROWS = 5_000

Progress = Callable[[int, int], None]  # (bytes read, total bytes)


class ImportAborted(Exception):
    """The file cannot be imported at all; nothing was written."""


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    replace_skipped: bool = False
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0

    def summary(self) -> str:
        counts = (
            f"{self.imported} imported, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed, {self.rejected} rejected"
        )
        if self.dry_run:
            return f"Dry run, nothing written. {self.rows} rows would give: {counts}"
        return f"{self.rows} rows: {counts}"


class _CountingReader(io.RawIOBase):
    """Counts bytes as the CSV reader pulls them, for a progress bar by file position."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.position += count or 0
        return int(count or 0)


def _header(reader: Iterator[list[str]]) -> list[str]:
    try:
        names = next(reader, [])
    except UnicodeDecodeError as exc:
        raise ImportAborted(f"the file is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ImportAborted(f"the header row cannot be read: {exc}") from None
    if not any(n.strip() for n in names):
        raise ImportAborted("the file is empty: a header row is required")
    normalised = [n.strip().casefold() for n in names]
    repeated = sorted({n for n in normalised if normalised.count(n) > 1 and n})
    if repeated:
        raise ImportAborted(f"the header repeats column(s): {', '.join(repeated)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in normalised]
    if missing:
        raise ImportAborted(f"missing required column(s): {', '.join(missing)}")
    return normalised


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The import allocates millions of short-lived rows and no reference cycles; the cyclic
    garbage collector's passes over them were 6-9% of its CPU (bench/import.py --gc-off).
    Objects alive before are frozen, so the first pass afterwards does not walk them either."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


async def import_policies(
    path: Path,
    db: Database,
    hash_key: bytes,
    *,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    if not path.is_file():
        raise ImportAborted(f"no such file: {path}")
    report = ImportReport(dry_run=dry_run)
    insurers = InsurerIndex(await all_insurers(db))
    total = path.stat().st_size

    with path.open("rb") as raw:
        counter = _CountingReader(raw)
        text = io.TextIOWrapper(
            io.BufferedReader(counter, 1 << 16), encoding="utf-8-sig", newline=""
        )
        reader = csv.reader(text)
        header = _header(reader)
        width = len(header)
        report.unknown_columns = [c for c in header if c and c not in KNOWN_COLUMNS]
        validator = RowValidator(insurers, hash_key, header)

        async def batches() -> AsyncIterator[list[StagedRow]]:
            lines: list[int] = []
            records: list[list[str]] = []

            def validated() -> list[StagedRow]:
                rows, errors = validator.validate_batch(lines, records)
                report.rows += len(lines)
                report.rejected += len({e.line for e in errors})
                report.errors.extend(errors)
                lines.clear()
                records.clear()
                if progress:
                    progress(counter.position, total)
                return rows

            line = reader.line_num
            try:
                for cells in reader:
                    start, line = line + 1, reader.line_num
                    if len(cells) != width:
                        if not any(c.strip() for c in cells):
                            continue  # a blank line: not a row
                        if len(cells) > width:
                            report.rows += 1
                            report.rejected += 1
                            report.errors.append(
                                RowError(
                                    start,
                                    "(row)",
                                    f"has {len(cells)} values; the header has {width} columns",
                                )
                            )
                            continue
                        cells += [""] * (width - len(cells))  # short rows: missing cells empty
                    elif not any(cells):
                        continue  # a row of only commas, as spreadsheets leave: not a row
                    lines.append(start)
                    records.append(cells)
                    if len(records) >= BATCH_ROWS:
                        yield validated()
            except UnicodeDecodeError as exc:
                raise ImportAborted(
                    f"the file is not UTF-8 text after line {line} ({exc.reason})"
                ) from None
            except csv.Error as exc:
                raise ImportAborted(f"line {line}: the CSV cannot be read: {exc}") from None
            if records:
                yield validated()
            if progress:
                progress(total, total)

        # Removing what a file does not list is only safe when the file was read completely:
        # a rejected row may be a person whose policy must not silently disappear.
        store = PolicyStore(db, hash_key)
        with _collector_paused():
            outcome = await store.write_import(
                batches(),
                replace=replace,
                dry_run=dry_run,
                safe_to_remove=lambda: not report.rejected,
            )

    for line, first in outcome.duplicates:
        report.errors.append(
            RowError(
                line,
                "policy_number",
                f"duplicate of line {first} (same identity number "
                "and policy number); the first one is kept",
            )
        )
    report.rejected += len(outcome.duplicates)
    report.errors.sort(key=lambda e: e.line)
    report.imported = outcome.imported
    report.updated = outcome.updated
    report.unchanged = outcome.unchanged
    report.removed = outcome.removed
    report.replace_skipped = replace and outcome.removal_skipped
    return report
