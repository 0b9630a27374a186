from __future__ import annotations

import asyncio
import os
from concurrent.futures.process import BrokenProcessPool
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageFont

from bot.__main__ import main
from bot.captcha import (
    CODE_LENGTH,
    CaptchaRenderer,
    StartMethod,
    answer_matches,
    code_digest,
    new_code,
    render_png,
)
from bot.captcha.image import ARABIC_INDIC, FONT_DIR, FONT_FILE, WESTERN, _glyphs_for
from bot.config import ENV_NAMES

KEY = b"captcha-test-key"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(data: bytes) -> None:
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(BytesIO(data)) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.load()  # the whole stream decodes, not just the header
    assert width >= 240
    assert height >= 90


# --- codes ---------------------------------------------------------------------------------


def test_code_is_six_ascii_digits() -> None:
    for _ in range(200):
        code = new_code()
        assert len(code) == CODE_LENGTH == 6
        assert code.isascii()
        assert code.isdecimal()


def test_codes_are_random() -> None:
    codes = {new_code() for _ in range(50)}
    assert len(codes) > 40  # 50 draws from a million: a repeat is rare, many would be a bug
    # every position varies, and leading zeros are kept
    for position in range(CODE_LENGTH):
        assert len({code[position] for code in codes}) > 1


def test_test_code_is_honoured() -> None:
    assert new_code("123456") == "123456"
    assert new_code(test_code="000000") == "000000"


@pytest.mark.parametrize("bad", ["12345", "1234567", "12345a", "١٢٣٤٥٦", "12 456"])
def test_malformed_test_code_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        new_code(bad)


# --- rendering -----------------------------------------------------------------------------


def test_render_png_is_a_png_of_at_least_240_by_90() -> None:
    data = render_png("123456")
    assert_png(data)
    with Image.open(BytesIO(data)) as image:
        assert image.size == (280, 90)


def test_different_codes_give_different_images() -> None:
    first, second = render_png("123456"), render_png("654321")
    assert first != second
    with Image.open(BytesIO(first)) as a, Image.open(BytesIO(second)) as b:
        assert a.tobytes() != b.tobytes()


def test_empty_code_is_refused() -> None:
    with pytest.raises(ValueError):
        render_png("")


def test_same_code_renders_differently_each_time() -> None:
    assert render_png("111111") != render_png("111111")


@pytest.mark.parametrize("bad", ["12a456", "١٢٣٤٥٦"])
def test_non_ascii_digit_code_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        render_png(bad)


def test_every_code_renders() -> None:
    for code in (
        "000000",
        "999999",
        "777777",
        "012345",
        "678901",
        *(new_code() for _ in range(20)),
    ):
        assert_png(render_png(code))


def test_font_ships_in_the_package_with_its_licence() -> None:
    assert FONT_FILE.parent == FONT_DIR
    assert FONT_FILE.is_file()
    assert "SIL OPEN FONT LICENSE Version 1.1" in (FONT_DIR / "OFL.txt").read_text()
    assert (FONT_DIR / "README.md").is_file()


def test_font_has_both_digit_sets() -> None:
    font = ImageFont.truetype(str(FONT_FILE), 40)

    def ink(char: str) -> tuple[tuple[int, int], bytes]:
        mask = font.getmask(char)
        return mask.size, bytes(mask)

    missing = ink("\uffff")  # a code point the font lacks: its .notdef box
    for char in WESTERN + ARABIC_INDIC:
        size, pixels = ink(char)
        assert size[0] > 0, char
        assert any(pixels), char
        assert (size, pixels) != missing, char
    assert len({ink(char) for char in WESTERN + ARABIC_INDIC}) == 20  # no two alike


def test_glyphs_keep_the_code_order_and_value() -> None:
    for _ in range(300):
        code = new_code()
        glyphs = _glyphs_for(code)
        assert "".join(str(int(g)) for g in glyphs) == code  # int() reads either script


def test_glyphs_avoid_cross_script_lookalikes() -> None:
    # No circle (Western 0, Arabic-Indic 5), no 7-shape (Western 7, Arabic-Indic 6), no ٢ (٣'s
    # near twin).
    for _ in range(300):
        glyphs = set(_glyphs_for(new_code()))
        assert not glyphs & {"0", "٥", "7", "٦", "٢"}


def test_glyphs_mix_the_scripts_when_the_code_allows() -> None:
    for code in ("131313", "444444", "989898", "123456"):
        glyphs = _glyphs_for(code)
        assert sum(g in ARABIC_INDIC for g in glyphs) >= 2, glyphs
        assert sum(g in WESTERN for g in glyphs) >= 2, glyphs
    assert all(g in ARABIC_INDIC for g in _glyphs_for("707070"))  # 0 and 7: Arabic-Indic only
    assert all(g in WESTERN for g in _glyphs_for("252566"))  # 2, 5 and 6: Western only


# --- captcha-sample ------------------------------------------------------------------------


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No .env and no bot settings from the environment: the command needs none."""
    monkeypatch.chdir(tmp_path)
    fields = ENV_NAMES
    for name in list(os.environ):
        if name.upper() in fields:  # settings read environment variables case-insensitively
            monkeypatch.delenv(name)
    return tmp_path


def test_captcha_sample_writes_distinct_codes(hermetic: Path) -> None:
    out = hermetic / "samples" / "nested"
    assert main(["captcha-sample", "--count", "5", "--out", str(out)]) == 0
    files = sorted(out.iterdir())
    assert len(files) == 5
    for path in files:
        assert path.suffix == ".png"
        assert len(path.stem) == CODE_LENGTH
        assert path.stem.isascii()
        assert path.stem.isdecimal()
        assert_png(path.read_bytes())
    assert len({path.read_bytes() for path in files}) == 5


def test_captcha_sample_does_not_overwrite(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = hermetic / "samples"
    out.mkdir()
    (out / "111111.png").write_bytes(b"keep")
    draws = iter(["111111", "222222", "222222", "333333"])
    monkeypatch.setattr("bot.captcha.sample.new_code", lambda: next(draws))
    assert main(["captcha-sample", "--count", "2", "--out", str(out)]) == 0
    assert (out / "111111.png").read_bytes() == b"keep"  # an earlier file is left alone
    assert sorted(p.name for p in out.iterdir()) == ["111111.png", "222222.png", "333333.png"]


@pytest.mark.parametrize("count", ["0", "-3", "many"])
def test_captcha_sample_bad_count_is_a_usage_error(
    hermetic: Path, count: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["captcha-sample", "--count", count, "--out", str(hermetic)])
    assert exit_info.value.code == 2
    assert "--count" in capsys.readouterr().err


# --- renderer ------------------------------------------------------------------------------


async def test_renderer_inline() -> None:
    async with CaptchaRenderer(workers=0) as renderer:
        assert_png(await renderer.render("024680"))


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
async def test_renderer_pool(start_method: StartMethod) -> None:
    if start_method == "forkserver" and os.name != "posix":
        pytest.skip("forkserver is POSIX only")
    async with CaptchaRenderer(workers=1, start_method=start_method) as renderer:
        images = await asyncio.gather(*(renderer.render(new_code()) for _ in range(8)))
    for data in images:
        assert_png(data)
    assert len(set(images)) == len(images)


async def test_renderer_starts_lazily_and_renders_in_another_process() -> None:
    renderer = CaptchaRenderer(workers=2)
    try:
        assert renderer._pool is None
        assert_png(await renderer.render("135790"))
        pool = renderer._pool
        assert pool is not None
        pids = {process.pid for process in pool._processes.values()}
        assert len(pids) == 2  # start() warmed up every worker, not just the first
        assert os.getpid() not in pids
    finally:
        await renderer.close()


async def test_renderer_recovers_from_a_broken_pool() -> None:
    async with CaptchaRenderer(workers=1) as renderer:
        pool = renderer._pool
        assert pool is not None
        with pytest.raises(BrokenProcessPool):
            await asyncio.wrap_future(pool.submit(os._exit, 1))  # a worker dies abruptly
        assert_png(await renderer.render("112233"))
        assert renderer._pool is not None
        assert renderer._pool is not pool


async def test_concurrent_renders_share_one_replacement_pool() -> None:
    async with CaptchaRenderer(workers=1) as renderer:
        pool = renderer._pool
        assert pool is not None
        with pytest.raises(BrokenProcessPool):
            await asyncio.wrap_future(pool.submit(os._exit, 1))
        images = await asyncio.gather(*(renderer.render("445566") for _ in range(4)))
        for data in images:
            assert_png(data)


async def test_closed_renderer_refuses_to_render() -> None:
    renderer = CaptchaRenderer(workers=1)
    await renderer.render("000000")
    await renderer.close()
    assert renderer._pool is None
    with pytest.raises(RuntimeError):
        await renderer.render("000000")
    await renderer.close()  # closing twice is harmless


async def test_close_before_start_is_harmless() -> None:
    await CaptchaRenderer(workers=1).close()


def test_negative_workers_refused() -> None:
    with pytest.raises(ValueError):
        CaptchaRenderer(workers=-1)


# --- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "407193",
        "٤٠٧١٩٣",  # Arabic-Indic
        "۴۰۷۱۹۳",  # Extended Arabic-Indic (Persian, Urdu)
        "٤٠٧193",  # mixed scripts
        " 407 193 ",
        "40 71 93",
        "\u200f٤٠٧١٩٣\u200f",  # right-to-left marks around a pasted answer
        "\u200e407\u200f193\u061c",  # LRM, RLM, Arabic letter mark
        "\u2067٤٠٧١٩٣\u2069",  # isolates
        "407\u200b193",  # zero-width space
        "\u00a0407193\t\n",
    ],
)
def test_answer_matches_any_digit_script(typed: str) -> None:
    assert answer_matches(KEY, code_digest(KEY, "407193"), typed)


@pytest.mark.parametrize(
    "typed",
    [
        "407194",  # one digit off
        "٤٠٧١٩٤",
        "391704",  # right digits, wrong order (e.g. typed reversed)
        "40719",  # too short
        "4071930",  # too long
        "٤٠٧١٩",
        "",
        "   ",
        "\u200f",
        "abcdef",
        "407l93",  # letter l for 1
        "４０７１９３",  # fullwidth digits: normalize_digits does not map them
    ],
)
def test_answer_mismatch(typed: str) -> None:
    assert not answer_matches(KEY, code_digest(KEY, "407193"), typed)


def test_empty_expected_never_matches() -> None:
    assert not answer_matches(KEY, "", "")
    assert not answer_matches(KEY, "", "   ")


def test_leading_zeros_matter() -> None:
    assert answer_matches(KEY, code_digest(KEY, "012345"), "٠١٢٣٤٥")
    assert not answer_matches(KEY, code_digest(KEY, "012345"), "12345")


def test_codes_are_uniform_draws_from_a_buffered_csprng() -> None:
    from collections import Counter

    from bot.captcha.codes import _BufferedRandom

    source = _BufferedRandom(chunk=64)  # refilled often: the refill path is exercised
    counts = Counter(source.below(7) for _ in range(7000))
    assert set(counts) == set(range(7))
    assert all(800 < n < 1200 for n in counts.values())
    codes = {new_code() for _ in range(200)}
    assert len(codes) > 190 and all(len(c) == 6 and c.isdecimal() for c in codes)
