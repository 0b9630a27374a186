"""Import a CSV file of policies: read, validate, stage and write in one transaction."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import gc
import io
import itertools
import multiprocessing
import pickle
import queue
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import BinaryIO

from bot.importer.rows import (
    KNOWN_COLUMNS,
    REQUIRED_COLUMNS,
    InsurerIndex,
    RowError,
    RowValidator,
    shown,
)
from bot.store.database import Database
from bot.store.import_write import StagedRow
from bot.store.insurers import all_insurers
from bot.store.policies import PolicyStore

BATCH_ROWS = 5_000

# What separates the columns, by what the header line holds: Excel writes semicolons where the
# locale's decimal mark is a comma (many Arabic locales), tabs for "Unicode Text". Not
# csv.Sniffer: it guesses from character frequencies, and Arabic text and quoted commas mislead
# it; the header's known column names do not.
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
DEFAULT_ENCODING = "utf-8"

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
    encoding: str = DEFAULT_ENCODING  # what the file was read as
    delimiter: str = ","

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


def _text_encoding(name: str | None, raw: BinaryIO) -> str:
    """The codec to read the file with: the operator's (UTF-8 with or without a BOM for any
    spelling of UTF-8), else UTF-16 or -32 when the file starts with their byte-order mark (as
    Excel's "Unicode Text" does), else UTF-8."""
    if name is not None:
        try:
            codec = codecs.lookup(name)
        except LookupError:
            codec = None
        # A bytes-to-bytes codec (base64, rot13) decodes to bytes: not a text encoding either.
        if codec is None or not isinstance(codec.decode(b"")[0], str):
            raise ImportAborted(
                f"--encoding {name!r} is not a text encoding Python knows (e.g. utf-8, cp1256)"
            ) from None
        return "utf-8-sig" if codec.name == "utf-8" else codec.name
    start = raw.read(4)
    raw.seek(0)
    if start.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int, bytes] | None:
    """(line, byte offset, bytes) where the file first fails to decode, or None."""
    if codecs.lookup(encoding).name == "utf-8-sig":
        encoding = "utf-8"  # the same, with the BOM skipped here (offsets stay the file's)
    decoder = codecs.getincrementaldecoder(encoding)()
    newlines = 0
    with path.open("rb") as raw:
        if encoding == "utf-8" and raw.read(3) != codecs.BOM_UTF8:
            raw.seek(0)
        offset = raw.tell()
        while True:
            chunk = raw.read(1 << 16)
            pending = len(decoder.getstate()[0])  # an incomplete sequence from the last chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                newlines += chunk[: max(0, at - offset)].count(b"\n")
                return newlines + 1, at, bytes(exc.object[exc.start : exc.end])
            if not chunk:
                return None
            newlines += chunk.count(b"\n")
            offset += len(chunk)


def _not_decodable(path: Path, encoding: str, exc: UnicodeDecodeError) -> ImportAborted:
    utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    name = "UTF-8" if utf8 else encoding
    found = _first_undecodable(path, encoding)
    if found is None:  # changed meanwhile?
        where = f"({exc.reason})"
    else:
        line, offset, data = found
        where = (
            f"line {line} (byte offset {offset}) has {' '.join(f'0x{b:02X}' for b in data)}, "
            f"which is not {name}"
        )
    if not utf8:
        return ImportAborted(f"the file is not {name} text: {where}. Is --encoding right?")
    return ImportAborted(
        f"the file is not UTF-8 text: {where}. Save it again from Excel as "
        '"CSV UTF-8 (Comma delimited)", or, if it is Windows Arabic text, import it as it is '
        "with --encoding cp1256"
    )


def _header(line: str) -> tuple[list[str], str]:
    """The header's column names, normalised, and the delimiter that separates them."""
    candidates: dict[str, list[str]] = {}
    for delimiter in DELIMITERS:
        try:
            names = next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error as exc:
            raise ImportAborted(f"the header row cannot be read: {exc}") from None
        candidates[delimiter] = [n.strip().casefold() for n in names]
    # The delimiter under which the most known column names appear; a tie goes to the comma.
    delimiter = max(candidates, key=lambda d: len(set(candidates[d]) & set(KNOWN_COLUMNS)))
    normalised = candidates[delimiter]
    if not any(normalised):
        raise ImportAborted("the file is empty: a header row is required")
    if not set(normalised) & set(KNOWN_COLUMNS):
        raise ImportAborted(
            f"no known column in the header line '{shown(line, 120)}'. Expected "
            f"{', '.join(REQUIRED_COLUMNS)} (and optional ones), separated by commas, "
            "semicolons or tabs: is the file delimited by something else, or its header "
            "line missing?"
        )
    repeated = sorted({n for n in normalised if normalised.count(n) > 1 and n})
    if repeated:
        raise ImportAborted(f"the header repeats column(s): {', '.join(repeated)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in normalised]
    if missing:
        raise ImportAborted(
            f"missing required column(s): {', '.join(missing)} "
            f"(the header has: {', '.join(shown(n, 40) for n in normalised)})"
        )
    return normalised, delimiter


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


@dataclass(slots=True)
class _Batch:
    """Validated rows of the file, with what the report counts of them."""

    rows: list[StagedRow]
    errors: list[RowError]
    count: int  # rows read, rejected ones included
    rejected: int
    position: int  # bytes of the file read so far


def _read_header(path: Path, encoding: str | None) -> tuple[str, list[str], str]:
    """(codec, normalised header, delimiter)."""
    with path.open("rb") as raw:
        codec = _text_encoding(encoding, raw)
        text = io.TextIOWrapper(raw, encoding=codec, newline="")
        try:
            header_line = text.readline()
        except UnicodeDecodeError as exc:
            raise _not_decodable(path, codec, exc) from None
        header, delimiter = _header(header_line)
    return codec, header, delimiter


# Characters read at a time. The CSV reader takes lines from an in-memory chunk, which it
# iterates in C a third faster than a file's lines (1.4 s → 0.9 s for 1,000,000 rows).
_CHUNK_CHARS = 1 << 20


def _chunks(text: io.TextIOWrapper) -> Iterator[io.StringIO]:
    """The text in chunks that end where a line ends (the rest of a chunk's last line read
    with it: after a lone \r that is the \n of a \r\n, if one follows), each iterable by
    line with the file's own line ends (newline="": \n, \r\n or a lone \r)."""
    while chunk := text.read(_CHUNK_CHARS):
        yield io.StringIO(chunk + text.readline(), newline="")


def _read_batches(
    path: Path, codec: str, delimiter: str, width: int, validator: RowValidator
) -> Iterator[_Batch]:
    """The file's rows after the header, validated BATCH_ROWS at a time."""
    with path.open("rb") as raw:
        counter = _CountingReader(raw)
        text = io.TextIOWrapper(io.BufferedReader(counter, 1 << 16), encoding=codec, newline="")
        try:
            header_line = text.readline()
        except UnicodeDecodeError as exc:
            raise _not_decodable(path, codec, exc) from None
        lines_of = itertools.chain.from_iterable(_chunks(text))
        reader = csv.reader(itertools.chain([header_line], lines_of), delimiter=delimiter)
        next(reader)
        lines: list[int] = []
        records: list[list[str]] = []
        errors: list[RowError] = []
        count = rejected = 0  # rows with too many values, before the batch they fall in

        def validated() -> _Batch:
            nonlocal errors, count, rejected
            rows, found = validator.validate_batch(lines, records)
            errors += found
            batch = _Batch(
                rows,
                errors,
                count + len(lines),
                rejected + len({e.line for e in found}),
                counter.position,
            )
            lines.clear()
            records.clear()
            errors, count, rejected = [], 0, 0
            return batch

        line = reader.line_num
        try:
            for cells in reader:
                start, line = line + 1, reader.line_num
                if len(cells) != width:
                    if not any(c.strip() for c in cells):
                        continue  # a blank line: not a row
                    if len(cells) > width:
                        count += 1
                        rejected += 1
                        errors.append(
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
            raise _not_decodable(path, codec, exc) from None
        except csv.Error as exc:
            raise ImportAborted(f"line {line}: the CSV cannot be read: {exc}") from None
        if records or count:
            yield validated()


# Files at least this large are read and validated in a separate process while this one
# writes (see _Worker); smaller ones in-process, where the worker's start (a new interpreter
# importing bot, ~0.2-0.3 s) costs about what it saves: measured on SQLite, 50,000 rows (4.6 MB)
# 0.58 s in-process, 0.62 s with the worker; 100,000 rows (9.3 MB) 1.18 s and 1.11 s.
# 8 MiB is ~85,000 rows of a typical file.
WORKER_MIN_BYTES = 8 << 20
# Batches the worker may have validated ahead of the writer, besides the one being written:
# memory stays bounded (a batch is ~1-2 MB pickled) however large the file.
_AHEAD = 2


@dataclass(frozen=True, slots=True)
class _Reading:
    """What reading and validating a file takes, here or in the worker (to which it goes
    pickled through the start pipe, the key with it: in memory, never on a command line)."""

    path: Path
    codec: str
    delimiter: str
    header: list[str]
    insurers: InsurerIndex
    hash_key: bytes
    day_first: bool

    def batches(self, *, bulk: bool = False) -> Iterator[_Batch]:
        validator = RowValidator(
            self.insurers, self.hash_key, self.header, day_first=self.day_first, bulk=bulk
        )
        return _read_batches(self.path, self.codec, self.delimiter, len(self.header), validator)


def _worker_main(send: Connection, reading: _Reading) -> None:
    """The worker process: each batch pickled as one message, then ("done",), or the
    exception that stopped it. The key arrives in memory, through the start pipe."""
    # Ctrl+C and SIGTERM reach the whole process group: the parent decides, and stops this.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.disable()  # as _collector_paused: millions of short-lived rows, no cycles
    message: tuple[str] | tuple[str, BaseException]
    try:
        for batch in reading.batches(bulk=True):
            send.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        message = ("done",)
    except (BrokenPipeError, EOFError):
        return  # the parent stopped reading: it has given up on the import
    except BaseException as exc:  # surfaced in the parent as the same exception
        message = ("failed", exc)
    try:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: its text
        problem = message[-1]
        data = pickle.dumps(("failed", RuntimeError(f"{type(problem).__name__}: {problem}")))
    with contextlib.suppress(BrokenPipeError):
        send.send_bytes(data)
    send.close()


class _Worker:
    """Reads and validates the file in a process started with "spawn" (as the captcha
    renderer's: never a fork of the running event loop and aiosqlite's threads), so that this
    process only writes. A receiving thread keeps at most _AHEAD batches waiting.
    As with any "spawn" start, a script that imports a large file must guard its entry with
    `if __name__ == "__main__":` (the worker imports the main module; bot's and the benches'
    are guarded)."""

    def __init__(self, reading: _Reading) -> None:
        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_worker_main,
            args=(send, reading),
            name="import-validator",
            daemon=True,
        )
        self._process.start()
        send.close()  # the worker's end: its exit is then the end of the pipe here
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_AHEAD)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="import-receiver", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        """Receive messages (the GIL released while waiting) into the bounded queue."""
        try:
            while not self._stopping.is_set():
                data = self._receive.recv_bytes()
                while not self._stopping.is_set():
                    try:
                        self._queue.put(data, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except (EOFError, OSError):
            pass
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=1)

    async def batches(self) -> AsyncIterator[_Batch]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = self._queue.get_nowait()
            except queue.Empty:
                data = await loop.run_in_executor(None, self._queue.get)
            if data is None:
                self._process.join(5)
                raise RuntimeError(
                    f"the import's validating process stopped (exit code {self._process.exitcode})"
                )
            message = pickle.loads(data)
            if isinstance(message, _Batch):
                yield message
            elif message[0] == "done":
                return
            else:
                raise message[1]

    def stop(self) -> None:
        """End the worker (at once if it is still reading) and the receiving thread."""
        self._stopping.set()
        if self._process.is_alive():
            self._process.kill()  # it ignores SIGTERM (see _worker_main)
        self._process.join()
        self._thread.join(5)  # the pipe's last writer has gone: its receive ends
        self._receive.close()


async def import_policies(
    path: Path,
    db: Database,
    hash_key: bytes,
    *,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    encoding: str | None = None,
    day_first: bool = False,
    worker_min_bytes: int = WORKER_MIN_BYTES,
) -> ImportReport:
    """`encoding`: a Python codec name (None: UTF-8, or UTF-16 by its byte-order mark).
    `day_first`: dates may be DD/MM/YYYY besides YYYY-MM-DD. A file of `worker_min_bytes` or
    more is read and validated in a separate process, overlapping the write."""
    if not path.is_file():
        raise ImportAborted(f"no such file: {path}")
    report = ImportReport(dry_run=dry_run)
    insurers = InsurerIndex(await all_insurers(db))
    total = path.stat().st_size

    codec, header, report.delimiter = _read_header(path, encoding)
    report.encoding = DEFAULT_ENCODING if codec == "utf-8-sig" else codec
    report.unknown_columns = [c for c in header if c and c not in KNOWN_COLUMNS]

    reading = _Reading(path, codec, report.delimiter, header, insurers, hash_key, day_first)
    worker = _Worker(reading) if total >= worker_min_bytes else None

    async def read_here() -> AsyncIterator[_Batch]:
        for batch in reading.batches():
            yield batch

    async def batches() -> AsyncIterator[list[StagedRow]]:
        source = worker.batches() if worker is not None else read_here()
        async for batch in source:
            report.rows += batch.count
            report.rejected += batch.rejected
            report.errors += batch.errors
            if progress:
                progress(batch.position, total)
            if batch.rows:
                yield batch.rows
        if progress:
            progress(total, total)

    try:
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
    finally:
        if worker is not None:
            worker.stop()

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
