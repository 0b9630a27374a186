"""Generate the spoken digits of the audio code: bot/data/voice/<locale>/<digit>-<variant>.flac.

    python scripts/make_voice_clips.py [--espeak /usr/bin/espeak-ng]

Run once, by a developer; the clips are committed and the bot never runs espeak-ng. Needs
espeak-ng (Debian: apt-get install espeak-ng) plus the bot's own numpy and soundfile.

Each digit is fed to espeak-ng on its own, as a numeral: the Arabic voice reads a lone numeral as
its word (صفر … تسعة) with the right vowels, which it does not when given the unvocalised word.
Output is resampled from espeak-ng's 22 050 Hz to 16 kHz (an Opus rate), trimmed of leading and
trailing silence, faded in and out over a few milliseconds (no clicks when mixed) and brought to
one loudness, so no digit stands out or drowns. Stored as 16-bit FLAC: lossless, half of WAV.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
VOICE_DIR = ROOT / "bot" / "data" / "voice"
RATE = 16_000
LOCALES = {"ar": "ar", "en": "en"}  # bot locale -> espeak-ng voice

# (espeak-ng voice variant, words per minute, pitch 0-99). A little slower than espeak-ng's
# default 175 wpm: one isolated word at full speed is clipped. Male and female variants so the
# voice is not always the same one; at render time one is picked per digit.
VARIANTS = (("", 150, 45), ("+m3", 160, 35), ("+f2", 155, 55))

TARGET_RMS = 0.1  # about -20 dBFS over the voiced part; peaks are capped below full scale
PEAK = 0.95
FADE_S = 0.005
SILENCE_DB = -40.0  # relative to the clip's loudest 10 ms
MARGIN_S = 0.02

Signal = npt.NDArray[np.float64]


def speak(espeak: str, voice: str, text: str, speed: int, pitch: int) -> tuple[Signal, int]:
    wav = subprocess.run(
        [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    samples, rate = sf.read(BytesIO(wav), dtype="float64")
    return samples, rate


def resample(samples: Signal, rate: int, target: int) -> Signal:
    """Band-limited resampling through the spectrum (fine for clips under a second).

    Padded with silence first so the FFT's wrap-around does not bleed the end into the start.
    """
    pad = len(samples) // 4
    padded = np.concatenate([np.zeros(pad), samples, np.zeros(pad)])
    n_out = round(len(padded) * target / rate)
    spectrum = np.fft.rfft(padded)
    out = np.fft.irfft(spectrum[: n_out // 2 + 1], n_out) * (n_out / len(padded))
    start = round(pad * target / rate)
    return out[start : start + round(len(samples) * target / rate)]


def trim(samples: Signal, rate: int) -> Signal:
    frame = rate // 100
    frames = len(samples) // frame
    energy = np.sqrt(np.mean(samples[: frames * frame].reshape(frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy > energy.max() * 10 ** (SILENCE_DB / 20))
    margin = round(MARGIN_S * rate)
    start = max(int(loud[0]) * frame - margin, 0)
    end = min((int(loud[-1]) + 1) * frame + margin, len(samples))
    clip = samples[start:end].copy()
    fade = round(FADE_S * rate)
    ramp = np.linspace(0.0, 1.0, fade)
    clip[:fade] *= ramp
    clip[-fade:] *= ramp[::-1]
    return clip


def level(clip: Signal, rate: int) -> Signal:
    frame = rate // 100
    frames = len(clip) // frame
    energy = np.sqrt(np.mean(clip[: frames * frame].reshape(frames, frame) ** 2, axis=1))
    voiced = energy > energy.max() * 10 ** (SILENCE_DB / 2 / 20)  # the louder half, in dB
    rms = float(np.sqrt(np.mean(energy[voiced] ** 2)))
    clip = clip * (TARGET_RMS / rms)
    peak = float(np.abs(clip).max())
    return clip * (PEAK / peak) if peak > PEAK else clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--espeak", default=shutil.which("espeak-ng") or "espeak-ng")
    args = parser.parse_args()

    for locale, voice in LOCALES.items():
        folder = VOICE_DIR / locale
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.flac"):
            old.unlink()
        for digit in "0123456789":
            for number, (variant, speed, pitch) in enumerate(VARIANTS):
                samples, rate = speak(args.espeak, voice + variant, digit, speed, pitch)
                clip = level(trim(resample(samples, rate, RATE), RATE), RATE)
                path = folder / f"{digit}-{number}.flac"
                sf.write(path, clip, RATE, format="FLAC", subtype="PCM_16")
                print(f"{path.relative_to(ROOT)}  {len(clip) / RATE:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
