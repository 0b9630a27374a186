"""Command line: `python -m bot [run | import-policies FILE | remind | broadcast ...]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.captcha.sample import add_sample_parser
from bot.config import Settings, SettingsError, load_settings
from bot.logs import setup_logging
from bot.reminders.cli import BulkChannel, add_broadcast_parser, add_remind_parser

EXIT_OK, EXIT_PARTIAL, EXIT_NOTHING_WRITTEN, EXIT_CONFIG = 0, 1, 2, 78


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Health-insurance status bot for Saudi Arabia."
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the bot (the default command)")
    imp = commands.add_parser("import-policies", help="load policies from a CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--replace",
        action="store_true",
        help="the file is the full current set: remove policies it does not list",
    )
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    imp.add_argument("--errors-csv", type=Path, help="write every rejected row to this CSV file")
    imp.add_argument(
        "--encoding",
        help="the file's text encoding, e.g. cp1256 for Windows Arabic (default: UTF-8, "
        "with or without BOM; UTF-16 by its BOM)",
    )
    imp.add_argument(
        "--date-format",
        choices=("YYYY-MM-DD", "DD/MM/YYYY"),
        default="YYYY-MM-DD",
        help="DD/MM/YYYY: also accept day/month/year dates (default: YYYY-MM-DD only)",
    )
    imp.add_argument(
        "--show", type=int, default=100, help="how many rejected rows to print (default 100)"
    )
    demo = commands.add_parser("load-demo", help="load the demo policies (dates relative to today)")
    demo.add_argument("--replace", action="store_true")
    add_remind_parser(commands)
    add_broadcast_parser(commands)
    add_sample_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    command = args.command or "run"
    if command == "import-policies":
        from bot.importer.cli import run_import

        return asyncio.run(run_import(settings, args))
    if command == "load-demo":
        from bot.importer.demo import run_load_demo

        return asyncio.run(run_load_demo(settings, replace=args.replace))
    if command == "remind":
        from bot.reminders.cli import run_remind

        return asyncio.run(run_remind(settings, args, _bulk_channels()))
    if command == "broadcast":
        from bot.reminders.cli import run_broadcast

        return asyncio.run(run_broadcast(settings, args, _bulk_channels()))
    if command == "captcha-sample":
        from bot.captcha.sample import run_sample

        return run_sample(args)
    return _run(settings)


def _bulk_channels() -> list[BulkChannel]:
    """Where `remind` and `broadcast` can send: Telegram and WhatsApp, each when configured
    (the reminders code is channel-neutral)."""
    from bot.channels import telegram_sender, whatsapp_sender
    from bot.reminders.pacing import Pace

    def telegram_missing(settings: Settings) -> str | None:
        return None if settings.telegram.bot_token is not None else "TELEGRAM_BOT_TOKEN is not set"

    def whatsapp_missing(settings: Settings) -> str | None:
        if settings.whatsapp.enabled:
            return None
        return "WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are not set"

    return [
        BulkChannel(
            telegram_sender.CHANNEL,
            telegram_sender.bulk_sender,
            lambda settings: Pace(settings.broadcast.rate),
            telegram_missing,
        ),
        BulkChannel(
            whatsapp_sender.CHANNEL,
            whatsapp_sender.bulk_sender,
            whatsapp_sender.bulk_pace,
            whatsapp_missing,
        ),
    ]


def _run(settings: Settings) -> int:
    from bot.channels.launch import run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
