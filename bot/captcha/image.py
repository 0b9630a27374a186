"""The image code: six digits drawn as a PNG a person reads at phone size."""

from __future__ import annotations

import secrets
from io import BytesIO

from captcha.image import ColorTuple, ImageCaptcha, random_color
from PIL.Image import Image
from PIL.Image import new as new_image
from PIL.ImageDraw import Draw
from PIL.ImageFilter import SMOOTH

WIDTH = 280
HEIGHT = 90


class _DigitCaptcha(ImageCaptcha):
    """ImageCaptcha tuned for six digits read on a phone.

    Upstream pastes each glyph through a mask derived from the glyph's *luminance*, so dark ink
    comes out faint and light ink lacks contrast against the light background. Here the glyph's
    own alpha is the mask: dark, opaque, anti-aliased digits in random dark colours.

    DroidSansMono (the only font the package ships) draws 1 with a long flag: turned clockwise or
    warped hard it reads as 7, so rotation leans anticlockwise and the warp is milder. Fewer
    gaps and less overlap keep six digits from being squeezed together; noise (dots and two
    curves in the ink colour, which simple thresholding cannot separate) is a little heavier.
    """

    character_rotate = (-6, 18)
    character_warp_dx = (0.1, 0.2)
    character_warp_dy = (0.2, 0.25)
    word_space_probability = 0.7  # a gap before a digit with probability 0.3
    word_offset_dx = 0.12

    def create_captcha_image(self, chars: str, color: ColorTuple, background: ColorTuple) -> Image:
        image = new_image("RGB", (self._width, self._height), background)
        draw = Draw(image)
        glyphs: list[Image] = []
        for char in chars:
            if secrets.randbits(32) / 2**32 > self.word_space_probability:
                glyphs.append(self._draw_character(" ", draw, color))
            glyphs.append(self._draw_character(char, draw, color))

        text_width = sum(glyph.size[0] for glyph in glyphs)
        width = max(text_width, self._width)
        image = image.resize((width, self._height))
        average = int(text_width / len(chars))
        jitter = int(self.word_offset_dx * average)
        offset = int(average * 0.1)
        for glyph in glyphs:
            w, h = glyph.size
            image.paste(glyph, (offset, int((self._height - h) / 2)), glyph.getchannel("A"))
            offset += w - secrets.randbelow(jitter + 1)
        if width > self._width:
            image = image.resize((self._width, self._height))
        return image

    def generate_image(
        self,
        chars: str,
        bg_color: ColorTuple | None = None,
        fg_color: ColorTuple | None = None,
    ) -> Image:
        background = bg_color or random_color(232, 255)
        ink = fg_color or random_color(10, 120, 255)
        image = self.create_captcha_image(chars, ink, background)
        self.create_noise_dots(image, ink, width=3, number=40)
        self.create_noise_curve(image, ink)
        self.create_noise_curve(image, ink)
        return image.filter(SMOOTH)


# Fonts: the DroidSansMono the captcha package ships (its only font). Loaded on first render.
_CAPTCHA = _DigitCaptcha(width=WIDTH, height=HEIGHT, font_sizes=(46, 52, 58))


def render_png(code: str) -> bytes:
    """Render `code` as a 280×90 PNG. CPU-bound and GIL-holding: see CaptchaRenderer."""
    if not code:
        raise ValueError("nothing to render")
    out = BytesIO()
    # zlib level 1: about half the encoding time of the default level 6, for the same size
    # within a few per cent (a noisy image barely compresses either way).
    _CAPTCHA.generate_image(code).save(out, format="PNG", compress_level=1)
    return out.getvalue()
