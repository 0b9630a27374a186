"""The web chat in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.i18n import plain_text
from tests.web.conftest import ARTIFACTS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """What the page logged as an error (a CSP violation, a failed load, an exception)."""
    return []


@pytest.fixture
def page(browser: Browser, web_chat: str, console_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ar-SA")
    page = context.new_page()
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.goto(web_chat)
    yield page
    context.close()


def bot_bubbles(page: Page) -> list[str]:
    return [plain_text(t) for t in page.locator(".bubble.bot").all_inner_texts()]


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def send(page: Page, text: str) -> None:
    before = page.locator(".bubble.bot").count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    expect(page.locator(".bubble.bot")).not_to_have_count(before)
    page.wait_for_function("n => document.querySelectorAll('.bubble.bot').length > n", arg=before)


def tap(page: Page, label: str) -> None:
    before = page.locator(".bubble.bot").count()
    page.locator(".chip", has_text=label).last.click()
    page.wait_for_function("n => document.querySelectorAll('.bubble.bot').length > n", arg=before)


def test_citizen_lookup_with_a_wrong_number_and_a_wrong_code(
    page: Page, console_errors: list[str]
) -> None:
    expect(page.locator(".bubble.bot").first).to_contain_text("مرحبًا!")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    shot(page, "1-greeting")
    tap(page, "مواطن")
    send(page, "12345")
    assert "أرسلت 5 أرقام" in bot_bubbles(page)[-1]
    send(page, "١٠٠٠٠٠٠٠٠٨")
    image = page.locator(".bubble.bot img").last
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") >= 240
    shot(page, "2-captcha")
    send(page, "000000")
    assert "الرمز غير صحيح" in bot_bubbles(page)[-1]
    send(page, "١٢٣٤٥٦")
    card = bot_bubbles(page)[-1]
    assert "التأمين سارٍ" in card and "بوبا العربية" in card and "1*******08" in card
    shot(page, "3-result")
    # Nothing overflows a 360 px wide phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert console_errors == []  # no CSP violation, no failed load (the favicon included)


def test_language_switch(page: Page) -> None:
    expect(page.locator(".bubble.bot").first).to_contain_text("مرحبًا!")
    tap(page, "English")
    assert bot_bubbles(page)[-1].startswith("Hello!")
    assert page.evaluate("document.documentElement.dir") == "ltr"
    tap(page, "Resident / visitor")
    send(page, "2000000006")
    send(page, "123456")
    card = bot_bubbles(page)[-1]
    assert "Insurance company: Bupa Arabia" in card
    shot(page, "4-english-result")


def test_desktop_width(browser: Browser, web_chat: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(web_chat)
    expect(page.locator(".bubble.bot").first).to_be_visible()
    width = page.locator(".phone").evaluate("el => el.getBoundingClientRect().width")
    assert width <= 480  # a readable column, not a 1280 px wide line
    shot(page, "5-desktop")
    context.close()


# Which element has the focus, in words a focus order can be read in.
FOCUSED = """() => {
  const e = document.activeElement;
  if (e.tagName === "AUDIO") return "audio";
  if (e.id) return "#" + e.id;
  if (e.classList.contains("chip")) {
    const bubble = e.closest(".bubble");
    const kind =
      bubble.querySelector("audio") ? "audio"
      : bubble.querySelector("img") ? "image" : "";
    return (kind + " chip " + e.textContent).trim();
  }
  return e.tagName.toLowerCase();
}"""

# Resolves once the clip's metadata is read (or it failed): what the browser knows of it.
METADATA = """audio => new Promise(resolve => {
  const done = () => resolve({
    duration: audio.duration, readyState: audio.readyState, error: audio.error && audio.error.code,
    canPlay: audio.canPlayType("audio/ogg; codecs=opus"),
  });
  if (audio.readyState >= 1 || audio.error) return done();
  audio.addEventListener("loadedmetadata", done, { once: true });
  audio.addEventListener("error", done, { once: true });
})"""


def focus_order(page: Page, key: str, start: str = "#input", presses: int = 40) -> list[str]:
    """Where `key` (Tab or Shift+Tab) takes the focus from `start`, back to `start` at most."""
    page.focus(start)
    order: list[str] = []
    for _ in range(presses):
        page.keyboard.press(key)
        order.append(page.evaluate(FOCUSED))
        if order[-1] == start:
            break
    return order


def test_audio_code_by_keyboard(page: Page, console_errors: list[str]) -> None:
    expect(page.locator(".bubble.bot").first).to_contain_text("مرحبًا!")
    tap(page, "مواطن")
    send(page, "1000000008")
    image = page.locator(".bubble.bot img").last
    expect(image).to_be_visible()
    # The alt text says what the image is; the caption beside it says what to do.
    caption = bot_bubbles(page)[-1]
    alt = image.get_attribute("alt")
    assert alt == "رمز مصوَّر من ستة أرقام" and alt not in caption

    tap(page, "رمز صوتي")
    audio = page.locator(".bubble.bot audio").last
    expect(audio).to_be_visible()
    assert audio.evaluate("a => a.controls") is True
    assert audio.get_attribute("aria-label") == "رمز صوتي من ستة أرقام"
    assert "استمع إلى الأرقام الستة" in bot_bubbles(page)[-1]  # a visible caption too
    # Chromium reads the OGG/Opus data: URL (CSP media-src allows data:) and knows its length.
    clip = audio.evaluate(METADATA)
    assert clip["error"] is None and clip["canPlay"] and clip["readyState"] >= 1, clip
    assert 2 < clip["duration"] < 30, clip
    # The player fits its bubble, and the page a 360 px wide phone.
    player, bubble = (
        el.evaluate("el => el.getBoundingClientRect().toJSON()")
        for el in (audio, page.locator(".bubble.bot").last)
    )
    assert bubble["left"] <= player["left"] and player["right"] <= bubble["right"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # Keyboard: from the input, Shift+Tab passes this bubble's two chips, then reaches the player.
    backwards = focus_order(page, "Shift+Tab", presses=3)
    assert backwards == ["audio chip 🔊 رمز صوتي", "audio chip رمز جديد", "audio"], backwards
    # Forwards, round from the input: the player comes after the image code's chips (the one
    # tapped) and before its own chips, which come before the input.
    forwards = focus_order(page, "Tab")
    stops = [stop for i, stop in enumerate(forwards) if i == 0 or forwards[i - 1] != stop]
    assert stops[-1] == "#input" and "audio" in stops, forwards
    at = stops.index("audio")
    assert stops.index("image chip 🔊 رمز صوتي") == at - 1, stops
    assert stops[at + 1 :] == ["audio chip رمز جديد", "audio chip 🔊 رمز صوتي", "#input"], stops
    # Tabbing in, the player itself takes the focus first (then its own buttons), ringed.
    page.locator(".chip", has_text="رمز صوتي").first.focus()
    page.keyboard.press("Tab")
    assert audio.evaluate("a => document.activeElement === a && a.matches(':focus-visible')")
    assert audio.evaluate("a => getComputedStyle(a).outlineStyle") != "none"
    shot(page, "6-audio-code")

    send(page, "123456")
    card = bot_bubbles(page)[-1]
    assert "التأمين سارٍ" in card and "بوبا العربية" in card and "1*******08" in card
    assert console_errors == []
