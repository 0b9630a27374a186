"""Audio code rendering: renders/s on one core (inline), and what a render costs and weighs.

    .venv/bin/python bench/captcha_audio.py [--seconds 5]

Prints figures, asserts nothing. "mix" is the numpy part (clips, pauses, noise), "encode" the
OGG/Opus encoding by the libsndfile the soundfile wheel bundles; renders/s is the whole
render_ogg. Duration is what a listener hears.
"""

from __future__ import annotations

import argparse
import sys
import time
from io import BytesIO
from pathlib import Path

# Run as a script, this file's folder is sys.path[0] and bench/captcha.py would shadow the
# `captcha` package; the repository root goes there instead.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bot.captcha import VOICES, new_code, render_ogg  # noqa: E402
from bot.captcha.audio import RATE, mix, warm_up  # noqa: E402


def bench(locale: str, seconds: float) -> dict[str, float]:
    count = size = 0
    duration = cpu_mix = cpu_encode = 0.0
    rng = np.random.default_rng()
    start = time.perf_counter()
    cpu0 = time.process_time()
    while time.perf_counter() - start < seconds:
        data = render_ogg(new_code(), locale)
        count += 1
        size += len(data)
        duration += sf.info(BytesIO(data)).duration
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    # the two halves, timed apart on a sample of renders
    for _ in range(10):
        t0 = time.process_time()
        samples = mix(new_code(), locale, rng)
        t1 = time.process_time()
        sf.write(BytesIO(), samples, RATE, format="OGG", subtype="OPUS")
        t2 = time.process_time()
        cpu_mix += t1 - t0
        cpu_encode += t2 - t1
    mean_duration = duration / count
    return {
        "rate": count / elapsed,
        "cpu_ms": cpu / count * 1000,
        "mix_ms": cpu_mix / 10 * 1000,
        "encode_ms": cpu_encode / 10 * 1000,
        "bytes": size / count,
        "seconds": mean_duration,
        "kbps": size / count * 8 / mean_duration / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per locale")
    args = parser.parse_args()

    print(
        f"audio code rendering (OGG/Opus, {RATE} Hz mono), {args.seconds:g} s per locale,"
        f" inline on one core; soundfile {sf.__version__}, libsndfile {sf.__libsndfile_version__}"
    )
    warm_up()
    for locale in VOICES:
        r = bench(locale, args.seconds)
        print(
            f"{locale}: {r['rate']:5.1f} renders/s  CPU {r['cpu_ms']:5.1f} ms/render"
            f" (mix {r['mix_ms']:4.1f} ms, encode {r['encode_ms']:5.1f} ms)"
            f"  mean {r['bytes'] / 1024:4.1f} KiB, {r['seconds']:4.2f} s, {r['kbps']:4.1f} kbit/s"
        )


if __name__ == "__main__":
    main()
