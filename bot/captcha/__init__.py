"""Challenges that guard lookups: six-digit codes, shown as an image or spoken as audio."""

from bot.captcha.audio import VOICES, render_ogg
from bot.captcha.codes import CODE_LENGTH, answer_matches, code_digest, new_code
from bot.captcha.image import HEIGHT, WIDTH, render_png
from bot.captcha.renderer import CaptchaRenderer, StartMethod

__all__ = [
    "CODE_LENGTH",
    "HEIGHT",
    "VOICES",
    "WIDTH",
    "CaptchaRenderer",
    "StartMethod",
    "answer_matches",
    "code_digest",
    "new_code",
    "render_ogg",
    "render_png",
]
