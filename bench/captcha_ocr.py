"""How well off-the-shelf OCR solvers read the image codes: ddddocr and tesseract.

    .venv/bin/pip install '.[bench]'        # ddddocr (pulls onnxruntime and OpenCV)
    .venv/bin/python bench/captcha_ocr.py [--count 300] [--before]

Renders `--count` codes with the real renderer (`bot.captcha.render_png`) and prints, per
solver, the share of codes read exactly on the first try and the per-digit (position-wise)
accuracy, plus the renderer's images per second. `--before` also measures the reference
renderer below (the image code as it was before the Arabic-Indic redesign), in the same run.
Tesseract runs only when the `tesseract` binary is on PATH; every preprocessing pipeline is
tried and the best one is reported (an attacker would pick the best). Prints figures, asserts
nothing: solver rates are noisy and belong here, not in the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

# Run as a script, this file's folder is sys.path[0] and bench/captcha.py would shadow the
# `captcha` package; the repository root goes there instead.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import secrets  # noqa: E402

from captcha.image import ColorTuple, ImageCaptcha, random_color  # noqa: E402
from PIL import Image, ImageFilter, ImageOps  # noqa: E402
from PIL.ImageDraw import Draw  # noqa: E402

from bot.captcha import new_code, render_png  # noqa: E402
from bot.domain.identity import normalize_digits  # noqa: E402

# --- the reference: the image code before the redesign (commit e782148), kept verbatim ------


class _ReferenceCaptcha(ImageCaptcha):  # type: ignore[misc]
    """REFERENCE ONLY: bot/captcha/image.py's `_DigitCaptcha` as of commit e782148.

    DroidSansMono digits, ddddocr read 92% of these exactly. Kept so one run prints before
    and after; not used by the bot.
    """

    character_rotate = (-6, 18)
    character_warp_dx = (0.1, 0.2)
    character_warp_dy = (0.2, 0.25)
    word_space_probability = 0.7
    word_offset_dx = 0.12

    def create_captcha_image(
        self, chars: str, color: ColorTuple, background: ColorTuple
    ) -> Image.Image:
        image = Image.new("RGB", (self._width, self._height), background)
        draw = Draw(image)
        glyphs: list[Image.Image] = []
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
    ) -> Image.Image:
        background = bg_color or random_color(232, 255)
        ink = fg_color or random_color(10, 120, 255)
        image = self.create_captcha_image(chars, ink, background)
        self.create_noise_dots(image, ink, width=3, number=40)
        self.create_noise_curve(image, ink)
        self.create_noise_curve(image, ink)
        result: Image.Image = image.filter(ImageFilter.SMOOTH)
        return result


_REFERENCE = _ReferenceCaptcha(width=280, height=90, font_sizes=(46, 52, 58))


def render_reference_png(code: str) -> bytes:
    out = BytesIO()
    _REFERENCE.generate_image(code).save(out, format="PNG", compress_level=1)
    return out.getvalue()


# --- samples and scoring -------------------------------------------------------------------


@dataclass
class Samples:
    codes: list[str]
    images: list[bytes]
    images_per_second: float


def make_samples(render: Callable[[str], bytes], count: int) -> Samples:
    render("000000")  # load fonts before timing
    codes = [new_code() for _ in range(count)]
    start = time.perf_counter()
    images = [render(code) for code in codes]
    return Samples(codes, images, count / (time.perf_counter() - start))


@dataclass
class Score:
    exact: float
    per_digit: float


def score(codes: Sequence[str], answers: Sequence[str]) -> Score:
    exact = digits = 0
    for code, raw in zip(codes, answers, strict=True):
        # A solver's Arabic-Indic (or other script) digits count: answer_matches accepts them.
        answer = normalize_digits(raw)
        exact += answer == code
        digits += sum(a == b for a, b in zip(code, answer, strict=False))
    return Score(exact / len(codes), digits / (len(codes) * len(codes[0])))


# --- ddddocr -------------------------------------------------------------------------------


def run_ddddocr(samples: Samples) -> list[tuple[str, Score]] | str:
    try:
        import ddddocr  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return "not installed (pip install '.[bench]')"
    results: list[tuple[str, Score]] = []
    for label, beta, digits_only in (
        ("default model", False, False),
        ("beta model", True, False),
        ("default model, digits-only charset", False, True),
    ):
        ocr = ddddocr.DdddOcr(show_ad=False, beta=beta)
        if digits_only:
            ocr.set_ranges(_WESTERN)  # (preset 0 returns nothing at all in 1.6.1)
        answers = [str(ocr.classification(image)) for image in samples.images]
        results.append((label, score(samples.codes, answers)))
    return results


# --- tesseract -----------------------------------------------------------------------------

_WESTERN = "0123456789"
_ARABIC_INDIC = "".join(chr(0x0660 + d) for d in range(10))


def _otsu(gray: Image.Image) -> Image.Image:
    """Binarise at Otsu's threshold (between-class variance maximised over the histogram)."""
    hist = gray.histogram()
    total = sum(hist)
    sum_all = sum(i * h for i, h in enumerate(hist))
    best, threshold, weight_b, sum_b = -1.0, 128, 0, 0
    for t in range(256):
        weight_b += hist[t]
        if weight_b == 0:
            continue
        weight_f = total - weight_b
        if weight_f == 0:
            break
        sum_b += t * hist[t]
        mean_b, mean_f = sum_b / weight_b, (sum_all - sum_b) / weight_f
        between = weight_b * weight_f * (mean_b - mean_f) ** 2
        if between > best:
            best, threshold = between, t
    return gray.point(lambda v: 255 if v > threshold else 0)


def _prep(scale: int, median: bool, otsu: bool) -> Callable[[Image.Image], Image.Image]:
    def prep(image: Image.Image) -> Image.Image:
        gray = ImageOps.grayscale(image)
        if scale > 1:
            gray = gray.resize((gray.width * scale, gray.height * scale), Image.Resampling.LANCZOS)
        if median:
            gray = gray.filter(ImageFilter.MedianFilter(3 if scale == 1 else 5))
        if otsu:
            gray = _otsu(gray)
        # A white border: tesseract finds text touching the edge less reliably.
        return ImageOps.expand(gray, border=20, fill=255)

    return prep


_PREPS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "gray": _prep(1, median=False, otsu=False),
    "gray+median": _prep(1, median=True, otsu=False),
    "gray+median+otsu": _prep(1, median=True, otsu=True),
    "x2+gray+median": _prep(2, median=True, otsu=False),
    "x2+gray+median+otsu": _prep(2, median=True, otsu=True),
    "x3+gray+median+otsu": _prep(3, median=True, otsu=True),
}


def _tesseract(paths: Sequence[Path], psm: int, lang: str, workdir: Path) -> list[str]:
    """One tesseract process for many images (its per-process start-up dominates otherwise)."""
    listing = workdir / f"list-{secrets.token_hex(8)}.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    whitelist = _WESTERN + (_ARABIC_INDIC if "ara" in lang else "")
    command = ["tesseract", str(listing), "stdout", "--psm", str(psm), "-l", lang]
    out = subprocess.run(
        [*command, "-c", f"tessedit_char_whitelist={whitelist}"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},  # our threads parallelise instead
    ).stdout
    pages = out.split("\f")
    if len(pages) == len(paths) + 1:  # a separator after every page, the last one too
        pages = pages[:-1]
    if len(pages) != len(paths):
        raise RuntimeError(f"tesseract gave {len(pages)} pages for {len(paths)} images")
    return ["".join(page.split()) for page in pages]


def _tesseract_batch(paths: Sequence[Path], psm: int, lang: str, workdir: Path) -> list[str]:
    """Answers for `paths` in chunks; a chunk whose process crashes is redone image by image.

    Tesseract 5.3 occasionally dies (SIGFPE) on a noisy image; that image counts as unread.
    """
    answers: list[str] = []
    for start in range(0, len(paths), 50):
        chunk = paths[start : start + 50]
        try:
            answers += _tesseract(chunk, psm, lang, workdir)
        except (subprocess.CalledProcessError, RuntimeError):
            for path in chunk:
                try:
                    answers += _tesseract([path], psm, lang, workdir)
                except (subprocess.CalledProcessError, RuntimeError):
                    answers.append("")
    return answers


def tesseract_langs() -> list[str]:
    out = subprocess.run(
        ["tesseract", "--list-langs"], capture_output=True, text=True, check=True
    ).stdout
    installed = {line.strip() for line in out.splitlines()[1:]}
    # Arabic when installed (Debian: tesseract-ocr-ara): it knows the Arabic-Indic digits.
    return [lang for lang in ("eng", "ara", "ara+eng") if set(lang.split("+")) <= installed]


def run_tesseract(samples: Samples, jobs: int) -> list[tuple[str, Score]] | str:
    if shutil.which("tesseract") is None:
        return "skipped: no tesseract binary on PATH"
    langs = tesseract_langs()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prepared: dict[str, list[Path]] = {}
        for name, prep in _PREPS.items():
            paths = []
            for i, data in enumerate(samples.images):
                path = workdir / f"{name}-{i}.png"
                with Image.open(BytesIO(data)) as image:
                    prep(image.convert("RGB")).save(path)
                paths.append(path)
            prepared[name] = paths
        pipelines = [
            (f"{name}, --psm {psm}, -l {lang}", prepared[name], psm, lang)
            for name in _PREPS
            for psm in (7, 8, 13)
            for lang in langs
        ]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [
                (label, pool.submit(_tesseract_batch, paths, psm, lang, workdir))
                for label, paths, psm, lang in pipelines
            ]
            results = [(label, score(samples.codes, f.result())) for label, f in futures]
    results.sort(key=lambda r: (r[1].exact, r[1].per_digit), reverse=True)
    return results


# --- report --------------------------------------------------------------------------------


def report(title: str, samples: Samples, jobs: int, show: int) -> None:
    print(f"\n== {title}: {len(samples.codes)} codes, {samples.images_per_second:.0f} images/s")
    dddd = run_ddddocr(samples)
    if isinstance(dddd, str):
        print(f"ddddocr   : {dddd}")
    else:
        for label, s in dddd:
            print(f"ddddocr   : exact {s.exact:6.1%}  per digit {s.per_digit:6.1%}  ({label})")
    tess = run_tesseract(samples, jobs)
    if isinstance(tess, str):
        print(f"tesseract : {tess}")
    else:
        label, s = tess[0]
        print(f"tesseract : exact {s.exact:6.1%}  per digit {s.per_digit:6.1%}  (best: {label})")
        for label, s in tess[1:show]:
            print(f"            exact {s.exact:6.1%}  per digit {s.per_digit:6.1%}  ({label})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="codes per renderer")
    parser.add_argument("--before", action="store_true", help="also the reference renderer")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="tesseract runs")
    parser.add_argument("--show", type=int, default=3, help="tesseract pipelines to print")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.before:
        report("before (reference renderer)", make_samples(render_reference_png, args.count),
               args.jobs, args.show)  # fmt: skip
    report("after (bot.captcha.render_png)", make_samples(render_png, args.count), args.jobs,
           args.show)  # fmt: skip


if __name__ == "__main__":
    main()
