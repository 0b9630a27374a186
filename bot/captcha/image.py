"""The image code: six digits drawn as a PNG a person reads at phone size.

Generic captcha solvers (ddddocr, tesseract) are trained on Latin glyphs, and read 90% and 45%
of plain DroidSansMono codes. Here each code mixes Western and Arabic-Indic digits, which people
in Saudi Arabia read natively, in Noto Sans Arabic (bundled, see fonts/README.md), drawn
touching, over faint digit-shaped clutter, with an elastic warp of the whole image.

A glyph a person could read as another digit in the *other* script is never drawn:

- 0 is always ٠ (Arabic-Indic zero, a bold dot): Western 0 is a circle, and so is ٥ (five).
- 5 is always Western 5, for the same reason (no circle anywhere in a code).
- 6 is always Western 6: ٦ looks like a Western 7.
- 7 is always ٧ (a V): Western 7 looks like ٦, and is what 1 was misread as.
- 2 is always Western 2: ٢ and ٣ differ by one tooth, lost when glyphs touch and warp.
- 1, 3, 4, 8, 9 take either script: their two shapes mean the same digit.

Digits are drawn left to right in code order (Arabic-Indic numerals are written so too).
"""

from __future__ import annotations

import math
import secrets
from functools import cache
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageFont
from PIL.ImageDraw import Draw
from PIL.ImageFilter import SMOOTH

WIDTH = 280
HEIGHT = 90

FONT_DIR = Path(__file__).with_name("fonts")
FONT_FILE = FONT_DIR / "NotoSansArabic-Bold.ttf"

WESTERN = "0123456789"
ARABIC_INDIC = "".join(chr(0x0660 + d) for d in range(10))  # ٠١٢٣٤٥٦٧٨٩

# The glyphs each digit may be drawn as (see the module docstring for why).
_CHOICES: dict[str, tuple[str, ...]] = {
    "0": ("٠",),
    "1": ("1", "١"),
    "2": ("2",),
    "3": ("3", "٣"),
    "4": ("4", "٤"),
    "5": ("5",),
    "6": ("6",),
    "7": ("٧",),
    "8": ("8", "٨"),
    "9": ("9", "٩"),
}

# Ink height of a digit, px; Arabic-Indic glyphs are drawn smaller than Western ones in the
# font, so every glyph is scaled to a common ink height (the zero, a dot, to a fraction).
_DIGIT_HEIGHTS = (46, 50, 54)
_ZERO_HEIGHT = 0.34  # of the digit height: a dot far bigger than any speck of clutter
_ROTATE = 10  # degrees either way: ٤ turned further reads as ٨
_OVERLAP = (0.08, 0.22)  # of a glyph's width: neighbours touch, so no clean segmentation
_CLUTTER = (14, 20)  # how many faint background digits
_CLUTTER_HEIGHTS = (14, 24)
_WARP_AMPLITUDE = (2.0, 3.5)  # px of the elastic warp
_KEEP_APART = "٠١"
_REFERENCE_SIZE = 100  # font size at which glyph heights are measured


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * secrets.randbits(32) / 2**32


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FILE), size)


@cache
def _glyph(char: str, height: int) -> Image.Image:
    """The glyph's ink as an "L" mask, cropped to its ink, about `height` px tall (cached)."""
    reference = _font(_REFERENCE_SIZE).getmask(char).getbbox()
    ink = reference[3] - reference[1] if reference else _REFERENCE_SIZE
    size = max(8, round(_REFERENCE_SIZE * height / ink))
    font = _font(size)
    left, top, right, bottom = (round(edge) for edge in font.getbbox(char))
    pad = 4
    mask = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    Draw(mask).text((pad - left, pad - top), char, font=font, fill=255)
    box = mask.getbbox()
    return mask.crop(box) if box else mask


def _glyphs_for(code: str) -> list[str]:
    """One glyph per digit, scripts mixed: at least two of each where the code allows."""
    glyphs = [_CHOICES[d][secrets.randbelow(len(_CHOICES[d]))] for d in code]
    free = [i for i, d in enumerate(code) if len(_CHOICES[d]) > 1]
    for script in (ARABIC_INDIC, WESTERN):
        while sum(g in script for g in glyphs) < 2:
            candidates = [i for i in free if glyphs[i] not in script]
            if not candidates:
                break
            i = candidates[secrets.randbelow(len(candidates))]
            glyphs[i] = script[int(code[i])]
            free.remove(i)  # once forced, not flipped back by the other script's pass
    return glyphs


def _colour(low: int, high: int) -> tuple[int, int, int]:
    return (
        low + secrets.randbelow(high - low + 1),
        low + secrets.randbelow(high - low + 1),
        low + secrets.randbelow(high - low + 1),
    )


def _draw_clutter(image: Image.Image, background: tuple[int, int, int]) -> None:
    """Small, faint digits of both scripts: shapes a solver takes for digits, a person ignores."""
    count = _CLUTTER[0] + secrets.randbelow(_CLUTTER[1] - _CLUTTER[0] + 1)
    for _ in range(count):
        char = (WESTERN + ARABIC_INDIC[1:])[secrets.randbelow(19)]  # no ٠: it is a speck
        mask = _glyph(char, _CLUTTER_HEIGHTS[0] + secrets.randbelow(_CLUTTER_HEIGHTS[1] - 13))
        fade = 45 + secrets.randbelow(35)  # far lighter than the ink (which is below 110)
        colour = tuple(max(0, c - fade - secrets.randbelow(20)) for c in background)
        x = secrets.randbelow(max(1, WIDTH - mask.width))
        y = secrets.randbelow(max(1, HEIGHT - mask.height))
        image.paste(colour, (x, y), mask)


def _draw_code(image: Image.Image, glyphs: list[str]) -> None:
    height = _DIGIT_HEIGHTS[secrets.randbelow(len(_DIGIT_HEIGHTS))]
    masks: list[Image.Image] = []
    for glyph in glyphs:
        mask = _glyph(glyph, round(height * _ZERO_HEIGHT) if glyph == "٠" else height)
        masks.append(mask.rotate(_uniform(-_ROTATE, _ROTATE), Image.Resampling.BILINEAR, True))
    # Advance by each glyph's width less a random overlap, except around the zero (a dot) and
    # the Arabic-Indic one (a bare stroke): touching a neighbour, they merge into it, so they
    # keep a small gap instead.
    advances = []
    for i, mask in enumerate(masks):
        alone = glyphs[i] in _KEEP_APART or (i + 1 < len(glyphs) and glyphs[i + 1] in _KEEP_APART)
        overlap = -0.15 if alone else _uniform(*_OVERLAP)
        advances.append(round(mask.width * (1 - overlap)))
    total = sum(advances[:-1]) + masks[-1].width
    x = (WIDTH - total) // 2 + round(_uniform(-8, 8))
    x = min(max(x, 2), max(2, WIDTH - total - 2))
    ink = _colour(10, 100)
    middle = HEIGHT // 2 + round(_uniform(-4, 4))
    for mask, advance in zip(masks, advances, strict=True):
        y = middle - mask.height // 2 + round(_uniform(-5, 5))
        # Each glyph's own shade of the code's ink: one colour key does not lift them all out.
        shade = tuple(min(110, max(0, c + secrets.randbelow(31) - 15)) for c in ink)
        image.paste(shade, (x, y), mask)
        x += advance
    # A line through the digits in the ink colour, so thresholding does not strip it.
    draw = Draw(image)
    y0, y1 = middle + round(_uniform(-14, 14)), middle + round(_uniform(-14, 14))
    start = round(_uniform(0, WIDTH * 0.2))
    end = round(_uniform(WIDTH * 0.8, WIDTH))
    bulge = round(_uniform(-12, 12))
    points = [
        (
            t,
            y0
            + (y1 - y0) * (t - start) / (end - start)
            + bulge * math.sin(math.pi * (t - start) / (end - start)),
        )
        for t in range(start, end + 1, 8)
    ]
    draw.line(points, fill=ink, width=3, joint="curve")


def _warp(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """An elastic warp: each cell of a coarse grid samples from a smoothly displaced quad."""
    columns, rows = 10, 4
    amplitude = _uniform(*_WARP_AMPLITUDE)
    phase_x, phase_y = _uniform(0, 2 * math.pi), _uniform(0, 2 * math.pi)
    freq_x, freq_y = _uniform(1.5, 2.5), _uniform(1.0, 2.0)

    def source(x: float, y: float) -> tuple[float, float]:
        u, v = x / WIDTH, y / HEIGHT
        return (
            x + amplitude * math.sin(2 * math.pi * freq_y * v + phase_x),
            y + amplitude * math.sin(2 * math.pi * freq_x * u + phase_y),
        )

    cell_w, cell_h = WIDTH / columns, HEIGHT / rows
    mesh = []
    for row in range(rows):
        for col in range(columns):
            x0, y0 = col * cell_w, row * cell_h
            x1, y1 = x0 + cell_w, y0 + cell_h
            box = (round(x0), round(y0), round(x1), round(y1))
            quad = (*source(x0, y0), *source(x0, y1), *source(x1, y1), *source(x1, y0))
            mesh.append((box, quad))
    return image.transform(
        image.size, Image.Transform.MESH, mesh, Image.Resampling.BILINEAR, fillcolor=background
    )


def render_image(code: str) -> Image.Image:
    if not code or not (code.isascii() and code.isdecimal()):
        raise ValueError("the code must be ASCII digits")
    background = _colour(228, 255)
    image = Image.new("RGB", (WIDTH, HEIGHT), background)
    _draw_clutter(image, background)
    _draw_code(image, _glyphs_for(code))
    return _warp(image, background).filter(SMOOTH)


def render_png(code: str) -> bytes:
    """Render `code` as a 280×90 PNG. CPU-bound and GIL-holding: see CaptchaRenderer."""
    out = BytesIO()
    # zlib level 1: about half the encoding time of the default level 6, for the same size
    # within a few per cent (a noisy image barely compresses either way).
    render_image(code).save(out, format="PNG", compress_level=1)
    return out.getvalue()
