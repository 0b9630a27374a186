"""`python -m bot captcha-sample`: write image codes from the real renderer, to look at or to
feed an OCR benchmark. Each file is named after its code, `<code>.png`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.captcha.codes import new_code
from bot.captcha.image import render_png


def _positive(text: str) -> int:
    value = int(text)  # a ValueError becomes argparse's "invalid _positive value"
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_sample_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sample = commands.add_parser(
        "captcha-sample", help="write image codes as <code>.png files (for review or OCR tests)"
    )
    sample.add_argument("--count", type=_positive, default=30, help="how many (default 30)")
    sample.add_argument("--out", type=Path, required=True, help="folder (created if missing)")


def write_samples(count: int, out: Path) -> list[Path]:
    """Write `count` images with distinct codes into `out`; existing files are left alone."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    seen: set[str] = set()
    while len(written) < count:
        code = new_code()
        path = out / f"{code}.png"
        # A repeated code (in this batch, or from an earlier run into the same folder) is
        # redrawn: overwriting would leave fewer files than asked for.
        if code in seen or path.exists():
            continue
        seen.add(code)
        path.write_bytes(render_png(code))
        written.append(path)
    return written


def run_sample(args: argparse.Namespace) -> int:
    write_samples(args.count, args.out)
    return 0
