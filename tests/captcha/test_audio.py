from __future__ import annotations

import asyncio
from io import BytesIO

import numpy as np
import pytest
import soundfile as sf

from bot.captcha import VOICES, CaptchaRenderer, new_code, render_ogg
from bot.captcha.audio import GAP, LEAD, MIDDLE, RATE, Signal, clips, mix
from bot.i18n import SUPPORTED


def assert_voice_message(data: bytes) -> float:
    """OGG/Opus as Telegram's sendVoice wants it; returns the duration in seconds."""
    assert data.startswith(b"OggS")
    assert data[28:36] == b"OpusHead"  # the first page carries the Opus identification header
    with sf.SoundFile(BytesIO(data)) as audio:
        assert (audio.format, audio.subtype, audio.channels) == ("OGG", "OPUS", 1)
        samples = audio.read(dtype="float32")
        rate = audio.samplerate
    assert np.isfinite(samples).all()
    assert 0.01 < float(np.abs(samples).max()) <= 1.0
    return float(len(samples) / rate)


def spoken_digits(samples: Signal, locale: str, code: str) -> list[tuple[int, int]]:
    """Where each clip of `code` lies in `samples` (a mix without noise or variation).

    Each clip must appear unchanged, in order, with only silence around it; a clip starts
    with a zero sample (its fade-in), so it is found from its first non-zero sample.
    """
    spans = []
    position = 0
    for digit in code:
        start = position + int(np.flatnonzero(samples[position:])[0])
        for variant in clips(locale)[int(digit)]:
            lead = int(np.flatnonzero(variant)[0])
            begin = start - lead
            if np.array_equal(samples[begin : begin + len(variant)], variant):
                break
        else:
            raise AssertionError(f"digit {digit} not found at sample {start}")
        spans.append((begin, begin + len(variant)))
        position = begin + len(variant)
    assert not samples[position:].any(), "something after the last digit"
    return spans


def voices_loaded() -> int:
    """Run in a pool worker: how many voices' clips that process has read."""
    return clips.cache_info().currsize


# --- the clips -----------------------------------------------------------------------------


def test_a_voice_for_every_bot_language() -> None:
    assert set(VOICES) == set(SUPPORTED)


@pytest.mark.parametrize("locale", VOICES)
def test_every_digit_has_clips_at_the_mixing_rate(locale: str) -> None:
    voice = clips(locale)
    assert len(voice) == 10
    for variants in voice:
        assert len(variants) >= 2
        for clip in variants:
            assert clip.ndim == 1
            assert 0.2 * RATE < len(clip) < 1.2 * RATE  # trimmed, yet a whole word


def test_soundfile_can_write_opus() -> None:
    # The wheel's bundled libsndfile has Opus; a system one picked up instead might not.
    assert "OPUS" in sf.available_subtypes("OGG")


# --- render_ogg ----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", VOICES)
def test_render_ogg_is_a_voice_message_of_plausible_length(locale: str) -> None:
    duration = assert_voice_message(render_ogg("407193", locale))
    assert 3.0 < duration < 12.0


def test_same_code_sounds_different_each_time() -> None:
    first, second = render_ogg("111111", "ar"), render_ogg("111111", "ar")
    assert first != second
    rng = np.random.default_rng()
    assert not np.array_equal(mix("111111", "ar", rng), mix("111111", "ar", rng))


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "12 456", "+12345"])
def test_malformed_code_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        render_ogg(bad, "en")


@pytest.mark.parametrize("locale", ["", "fr", "AR", "ar-SA", "english"])
def test_unknown_locale_is_refused(locale: str) -> None:
    with pytest.raises(ValueError):
        render_ogg("123456", locale)


@pytest.mark.parametrize("locale", VOICES)
def test_the_code_is_spoken_in_order(locale: str) -> None:
    rng = np.random.default_rng(7)
    for code in ("407193", "000000", new_code()):
        spoken_digits(mix(code, locale, rng, noise=False, vary=False), locale, code)


def test_a_wrong_code_is_not_found() -> None:
    # the check above could not tell digits apart if it passed for any clip
    samples = mix("407193", "en", np.random.default_rng(7), noise=False, vary=False)
    with pytest.raises(AssertionError):
        spoken_digits(samples, "en", "407194")


def test_pauses_between_digits_and_longer_after_the_third() -> None:
    rng = np.random.default_rng(11)
    for _ in range(5):
        spans = spoken_digits(mix("123456", "en", rng, noise=False, vary=False), "en", "123456")
        # a clip's own fade and margin add a few hundredths of a second to the silence
        assert LEAD[0] * RATE <= spans[0][0] <= (LEAD[1] + 0.1) * RATE
        gaps = [(spans[i + 1][0] - spans[i][1]) / RATE for i in range(5)]
        assert all(GAP[0] <= gap <= GAP[1] + 0.1 for i, gap in enumerate(gaps) if i != 2)
        assert MIDDLE[0] <= gaps[2] <= MIDDLE[1] + 0.1


def test_noise_is_light() -> None:
    rng = np.random.default_rng(3)
    clean = mix("582016", "ar", rng, noise=False)
    noisy = mix("582016", "ar", np.random.default_rng(3))
    noise = noisy - clean  # same seed: the same clips and timing, plus the noise
    voiced = np.abs(clean) > 0.01
    snr = 10 * np.log10(np.mean(clean[voiced] ** 2) / np.mean(noise**2))
    assert 12 < snr < 28
    assert (noise != 0).mean() > 0.99  # no stretch of digital silence


# --- CaptchaRenderer.render_audio ----------------------------------------------------------


async def test_render_audio_inline() -> None:
    async with CaptchaRenderer(workers=0) as renderer:
        assert_voice_message(await renderer.render_audio("024680", "en"))


async def test_render_audio_in_a_pool() -> None:
    async with CaptchaRenderer(workers=1) as renderer:
        messages = await asyncio.gather(
            renderer.render_audio("135790", "ar"),
            renderer.render_audio("135790", "en"),
            renderer.render(new_code()),  # images and audio share the pool
        )
        assert messages[2].startswith(b"\x89PNG")
        for data in messages[:2]:
            assert_voice_message(data)
        with pytest.raises(ValueError):  # raised in the worker, re-raised here
            await renderer.render_audio("13579", "ar")


async def test_pool_workers_load_the_clips_before_the_first_request() -> None:
    async with CaptchaRenderer(workers=1) as renderer:
        pool = renderer._pool
        assert pool is not None
        assert await asyncio.wrap_future(pool.submit(voices_loaded)) == len(VOICES)
