"""`python -m bot import-policies`: the operator's view of an import (report, progress, exit)."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from bot.config import Settings
from bot.importer.rows import RowError
from bot.importer.run import (
    DEFAULT_ENCODING,
    DELIMITERS,
    ImportAborted,
    ImportReport,
    import_policies,
)
from bot.store.setup import open_store

EXIT_NOTHING_WRITTEN = 2


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        yield bar


def _write_errors(path: Path, errors: list[RowError], delimiter: str) -> None:
    # With a BOM, so Excel reads it as UTF-8 (not the locale's code page, which garbles
    # Arabic); with the input's delimiter, so it opens in columns where the input came from.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["line", "column", "reason"])
        writer.writerows((e.line, e.column, e.reason) for e in errors)


def print_report(report: ImportReport, show: int, errors_csv: Path | None) -> None:
    if report.encoding != DEFAULT_ENCODING or report.delimiter != ",":
        print(
            f"Read as {report.encoding} text, columns separated by {DELIMITERS[report.delimiter]}"
        )
    if report.unknown_columns:
        print(f"Ignored unknown column(s): {', '.join(report.unknown_columns)}")
    for error in report.errors[:show]:
        print(f"Rejected {error}")
    hidden = len(report.errors) - show
    if hidden > 0:
        print(
            f"... and {hidden} more problem(s)"
            + ("" if errors_csv else " (use --errors-csv FILE to list them all)")
        )
    if errors_csv and report.errors:
        _write_errors(errors_csv, report.errors, report.delimiter)
        print(f"All {len(report.errors)} problem(s) written to {errors_csv}")
    if report.replace_skipped:
        print(
            "--replace: nothing removed, because some rows were rejected; fix them and "
            "import again to remove policies that are no longer listed."
        )
    print(report.summary())


async def run_import(settings: Settings, args: argparse.Namespace) -> int:
    db = await open_store(settings)
    try:
        with _progress_bar(sys.stdout.isatty()) as bar:
            task = bar.add_task("Importing", total=None) if bar else None

            def progress(done: int, total: int) -> None:
                if bar is not None and task is not None:
                    bar.update(task, completed=done, total=total)

            report = await import_policies(
                args.file,
                db,
                settings.database.hash_key,
                replace=args.replace,
                dry_run=args.dry_run,
                progress=progress,
                encoding=args.encoding,
                day_first=args.date_format == "DD/MM/YYYY",
            )
    except ImportAborted as exc:
        print(f"Nothing imported: {exc}", file=sys.stderr)
        return EXIT_NOTHING_WRITTEN
    finally:
        await db.close()
    print_report(report, args.show, args.errors_csv)
    return report.exit_code
