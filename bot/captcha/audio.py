"""The audio code: six digits spoken in Arabic or English, the image code's accessible twin.

Clips of each digit (bot/data/voice/<locale>/<digit>-<variant>.flac, made by
scripts/make_voice_clips.py) are mixed with numpy and encoded as OGG/Opus, the only format
Telegram's sendVoice and WhatsApp accept for a voice message.

Why not the captcha package's AudioCaptcha: it mixes 8 kHz, 8-bit WAV in pure Python (about 5
renders/s), leaves 1-3 s between digits (17 s for six), plays reversed digits underneath as
noise (hard on exactly the people who need audio), and would still need decoding and re-encoding
to reach Opus. Here: 16 kHz (Opus wideband, espeak-ng's voice carries little above 8 kHz),
digits a third of a second apart with a longer pause after the third, light pink noise.
"""

from __future__ import annotations

from functools import cache
from io import BytesIO

import numpy as np
import numpy.typing as npt
import soundfile as sf

from bot.captcha.codes import CODE_LENGTH
from bot.package_data import package_file

VOICES = ("ar", "en")  # kept in step with bot.i18n.SUPPORTED (a test checks)
VOICE_DIR = package_file("data", "voice")  # package data: works from an installed wheel
RATE = 16_000  # one of Opus's rates (8/12/16/24/48 kHz); also the clips' rate

# Timing, in seconds, each drawn uniformly from its range per render so no two renders align.
LEAD = (0.35, 0.6)  # before the first digit: players clip the very start
GAP = (0.25, 0.45)  # between digits: a natural pace for reading back a number
MIDDLE = (0.7, 0.95)  # after the third digit: people chunk six digits as 3 + 3
TAIL = (0.3, 0.5)
SPEED = (0.94, 1.06)  # playback-rate change per digit (tape-like: pitch moves with it)
GAIN_DB = (-4.0, 0.0)  # per digit
# Speech-to-noise ratio (against the clips' -20 dBFS loudness): clearly audible hiss that a
# person talks over easily, but no stretch of the file is digital silence or a clean clip.
SNR_DB = (16.0, 22.0)
PEAK = 0.95

Signal = npt.NDArray[np.float32]


@cache
def clips(locale: str) -> tuple[tuple[Signal, ...], ...]:
    """Each digit's clips for `locale`, indexed by digit; read once per process."""
    if locale not in VOICES:
        raise ValueError(f"no voice for locale {locale!r}")
    folder = VOICE_DIR / locale
    by_digit: list[tuple[Signal, ...]] = []
    for digit in "0123456789":
        variants = []
        names = sorted(
            p.name
            for p in folder.iterdir()
            if p.name.startswith(f"{digit}-") and p.name.endswith(".flac")
        )
        for name in names:
            path = folder / name
            with path.open("rb") as handle:
                samples, rate = sf.read(handle, dtype="float32")
            if rate != RATE or samples.ndim != 1:
                raise ValueError(f"{path}: expected mono {RATE} Hz")
            variants.append(samples)
        if not variants:
            raise FileNotFoundError(f"no clip for {digit} in {folder}")
        by_digit.append(tuple(variants))
    return tuple(by_digit)


def warm_up() -> None:
    """Read every voice's clips and start the encoder once (pool warm-up): a cold first render
    takes about 100 ms longer. A tenth of a second is encoded, not a whole code, which would
    cost a pool start 150 ms per voice for no further gain.
    """
    for locale in VOICES:
        mix("0" * CODE_LENGTH, locale, np.random.default_rng())
    sf.write(BytesIO(), np.zeros(RATE // 10, np.float32), RATE, format="OGG", subtype="OPUS")


def render_ogg(code: str, locale: str) -> bytes:
    """`code` spoken digit by digit in `locale` ("ar" or "en"), as OGG/Opus bytes.

    An unknown locale raises ValueError rather than falling back to English: callers pass a
    locale from bot.i18n.pick_locale, so anything else is a bug, and reading English digits to
    someone who chose Arabic would hide it. CPU-bound: see CaptchaRenderer.render_audio.
    """
    samples = mix(code, locale, np.random.default_rng())
    out = BytesIO()
    sf.write(out, samples, RATE, format="OGG", subtype="OPUS")
    return out.getvalue()


def mix(
    code: str, locale: str, rng: np.random.Generator, *, noise: bool = True, vary: bool = True
) -> Signal:
    """The spoken code as float samples at RATE. `noise=False, vary=False`: for tests only."""
    if len(code) != CODE_LENGTH or not (code.isascii() and code.isdecimal()):
        raise ValueError(f"code must be {CODE_LENGTH} ASCII digits")
    voice = clips(locale)

    def seconds(bounds: tuple[float, float]) -> int:
        return round(rng.uniform(*bounds) * RATE)

    parts: list[Signal] = [np.zeros(seconds(LEAD), np.float32)]
    for position, digit in enumerate(code):
        variants = voice[int(digit)]
        clip = variants[rng.integers(len(variants))]
        if vary:
            clip = _change_speed(clip, rng.uniform(*SPEED))
            clip = clip * np.float32(10 ** (rng.uniform(*GAIN_DB) / 20))
        parts.append(clip)
        if position == CODE_LENGTH - 1:
            parts.append(np.zeros(seconds(TAIL), np.float32))
        else:
            pause = MIDDLE if position == CODE_LENGTH // 2 - 1 else GAP
            parts.append(np.zeros(seconds(pause), np.float32))
    samples = np.concatenate(parts)
    if noise:
        samples += _pink_noise(len(samples), rng) * np.float32(
            0.1 * 10 ** (-rng.uniform(*SNR_DB) / 20)
        )
    peak = float(np.abs(samples).max())
    if peak > PEAK:
        samples *= np.float32(PEAK / peak)
    return samples


def _change_speed(clip: Signal, speed: float) -> Signal:
    """Play `clip` `speed` times as fast (linear interpolation: the shift is only a few %)."""
    positions = np.arange(0.0, len(clip) - 1, speed)
    faster: Signal = np.interp(positions, np.arange(len(clip)), clip).astype(np.float32)
    return faster


def _pink_noise(length: int, rng: np.random.Generator) -> Signal:
    """Unit-RMS noise falling 3 dB per octave from 200 Hz: a room's hiss rather than a whistle.

    Shaped in the spectrum since an IIR filter would need a Python loop per sample; over a
    power-of-two length, as an FFT of a length with large prime factors is several times slower.
    """
    size = 1 << (length - 1).bit_length()
    spectrum = np.fft.rfft(rng.standard_normal(size))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(size, 1 / RATE), 200.0))
    pink = np.fft.irfft(spectrum, size)[:length]
    unit: Signal = (pink / np.sqrt(np.mean(pink**2))).astype(np.float32)
    return unit
