"""The web chat in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Response, Route, expect, sync_playwright

from bot.i18n import plain_text, strip_isolates
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


# A bubble's own text, without its buttons' labels.
CAPTION = "b => [...b.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('')"


def shared_phrases(one: str, other: str) -> set[str]:
    """The two-word phrases of `one` that `other` repeats (any case, punctuation aside)."""

    def phrases(text: str) -> set[str]:
        words = re.findall(r"[\w\u064b-\u065f\u0670]+", strip_isolates(text).lower())
        return {f"{a} {b}" for a, b in itertools.pairwise(words)}

    return phrases(one) & phrases(other)


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
    # The alt text says what the image is (and that it has an alternative); the caption
    # beside it says what to do, and a screen reader reads both: no phrase of one in the other.
    caption = page.locator(".bubble.bot").last.evaluate(CAPTION)
    alt = image.get_attribute("alt")
    assert alt == "رمز مصوَّر (ويتوفر رمز صوتي أيضًا)"
    assert shared_phrases(alt, caption) == set(), caption

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
    # Forwards, round from the input: the send button, then (the image code's buttons being
    # an earlier message's, out of the tab order) the player, its own chips, the input.
    forwards = focus_order(page, "Tab")
    stops = [stop for i, stop in enumerate(forwards) if i == 0 or forwards[i - 1] != stop]
    assert stops == [
        "#send",
        "body",
        "audio",
        "audio chip رمز جديد",
        "audio chip 🔊 رمز صوتي",
        "#input",
    ], forwards
    # Tabbing in, the player itself takes the focus first (then its own buttons), ringed.
    page.focus("#send")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "body"
    page.keyboard.press("Tab")
    assert audio.evaluate("a => document.activeElement === a && a.matches(':focus-visible')")
    assert audio.evaluate("a => getComputedStyle(a).outlineStyle") != "none"
    shot(page, "6-audio-code")

    send(page, "123456")
    card = bot_bubbles(page)[-1]
    assert "التأمين سارٍ" in card and "بوبا العربية" in card and "1*******08" in card
    assert console_errors == []


# The last button in the chat, and the part of the chat one sees: once the newest image has
# loaded (its load handler, registered first, has run) and the page has been laid out again.
LAST_BUTTON_AND_VIEW = """async () => {
  const images = document.querySelectorAll(".bubble.bot img");
  const image = images[images.length - 1];
  if (!image.complete) await new Promise(r => image.addEventListener("load", r, { once: true }));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const chips = document.querySelectorAll(".chip");
  return {
    complete: image.complete && image.naturalHeight > 0,
    button: chips[chips.length - 1].getBoundingClientRect().toJSON(),
    view: document.getElementById("log").getBoundingClientRect().toJSON(),
  };
}"""


def assert_last_button_in_view(page: Page) -> None:
    seen = page.evaluate(LAST_BUTTON_AND_VIEW)
    assert seen["complete"], seen
    button, view = seen["button"], seen["view"]
    assert view["top"] <= button["top"] and button["bottom"] <= view["bottom"], seen


def test_an_image_code_scrolls_into_view_with_its_buttons(page: Page) -> None:
    expect(page.locator(".bubble.bot").first).to_contain_text("مرحبًا!")
    tap(page, "مواطن")
    send(page, "1000000008")
    assert_last_button_in_view(page)
    expect(page.locator(".bubble.bot .chip").last).to_have_text("🔊 رمز صوتي")
    tap(page, "رمز جديد")
    expect(page.locator(".bubble.bot img")).to_have_count(2)
    assert_last_button_in_view(page)
    shot(page, "7-new-code")


def held_context_page(browser: Browser, url: str, locale: str) -> tuple[Page, list[Route]]:
    """A page whose chat requests are held (not answered): what it shows on its own at load."""
    page = browser.new_context(viewport={"width": 360, "height": 740}, locale=locale).new_page()
    held: list[Route] = []
    page.route("**/api/chat", lambda route: held.append(route))
    page.goto(url)
    page.wait_for_function("() => document.readyState === 'complete'")
    return page, held


@pytest.mark.parametrize(
    ("locale", "lang", "direction", "title", "placeholder", "send_label"),
    [
        ("ar-SA", "ar", "rtl", "حالة التأمين الصحي", "اكتب رقمك أو الرمز", "إرسال"),
        ("en-US", "en", "ltr", "Health insurance status", "Type your number or the code", "Send"),
    ],
)
def test_the_page_is_titled_and_labelled_at_load(
    browser: Browser,
    web_chat: str,
    locale: str,
    lang: str,
    direction: str,
    title: str,
    placeholder: str,
    send_label: str,
) -> None:
    page, held = held_context_page(browser, web_chat, locale)
    try:
        # No reply has come (the first request is held), and all is in place already.
        assert len(held) == 1 and page.locator(".bubble").count() == 0
        assert page.evaluate("document.title") == title
        assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
            lang,
            direction,
        ]
        expect(page.locator("h1")).to_have_text(title)
        expect(page.locator("#input")).to_have_attribute("placeholder", placeholder)
        expect(page.locator("#input")).to_have_accessible_name(placeholder)
        # The send button's accessible name is what it shows (WCAG 2.5.3, label in name).
        expect(page.locator("#send")).to_have_text(send_label)
        expect(page.locator("#send")).to_have_accessible_name(send_label)
        held[0].continue_()
        expect(page.locator(".bubble.bot")).not_to_have_count(0)
        assert page.evaluate("document.title") == title
        expect(page.locator("#send")).to_have_accessible_name(send_label)
    finally:
        page.context.close()


def test_the_page_has_an_icon_and_no_request_fails(browser: Browser, web_chat: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ar-SA")
    page = context.new_page()
    failed: list[str] = []

    def check(response: Response) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    page.on("response", check)
    page.on("requestfailed", lambda request: failed.append(f"failed {request.url}"))
    page.goto(web_chat)
    expect(page.locator(".bubble.bot").first).to_contain_text("مرحبًا!")
    # Headless Chromium fetches no icon by itself: load the one the page names, as a tab would.
    icon = page.evaluate(
        """() => new Promise(resolve => {
          const href = document.querySelector("link[rel~=icon]").href;
          const image = new Image();
          image.onload = () => resolve({ href, width: image.naturalWidth });
          image.onerror = () => resolve({ href, width: 0 });
          image.src = href;
        })"""
    )
    assert icon["width"] > 0, icon
    assert icon["href"].startswith(web_chat + "/"), icon
    response = page.request.get(icon["href"])
    assert response.status == 200 and response.headers["content-type"] == "image/svg+xml"
    assert failed == []
    context.close()


@pytest.mark.parametrize(
    ("locale", "greeting", "other", "then", "direction", "title"),
    [
        ("ar-SA", "مرحبًا!", "English", "Hello!", "ltr", "Health insurance status"),
        ("en-US", "Hello!", "العربية", "مرحبًا!", "rtl", "حالة التأمين الصحي"),
    ],
)
def test_the_browser_language_and_the_language_button_on_the_first_screen(
    browser: Browser,
    web_chat: str,
    locale: str,
    greeting: str,
    other: str,
    then: str,
    direction: str,
    title: str,
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale=locale)
    page = context.new_page()
    page.goto(web_chat)
    expect(page.locator(".bubble.bot").first).to_contain_text(greeting)
    # The button that switches language is in sight without scrolling.
    button = page.locator(".chip", has_text=other)
    box = button.evaluate("el => el.getBoundingClientRect().toJSON()")
    view = page.locator("#log").evaluate("el => el.getBoundingClientRect().toJSON()")
    assert view["top"] <= box["top"] and box["bottom"] <= view["bottom"], (box, view)
    assert page.evaluate("document.documentElement.scrollHeight") <= 740
    tap(page, other)
    assert bot_bubbles(page)[-1].startswith(then)
    assert page.evaluate("[document.documentElement.dir, document.title]") == [direction, title]
    # The choice outlives a reload: the page comes in the chosen language before any reply.
    page.route("**/api/chat", lambda route: None)  # held: never answered
    page.reload()
    assert page.evaluate("[document.documentElement.dir, document.title]") == [direction, title]
    context.close()


def test_keyboard_focus_after_a_button_and_the_buttons_of_earlier_messages(page: Page) -> None:
    expect(page.locator(".bubble.bot").first).to_contain_text("مرحبًا!")
    greeting_buttons = page.locator(".bubble.bot").first.locator(".chip")
    expect(greeting_buttons).to_have_count(4)
    # By keyboard: Shift+Tab from the text field to «مواطن», Enter.
    order = focus_order(page, "Shift+Tab", presses=4)
    assert order[-1] == "chip مواطن", order
    page.keyboard.press("Enter")
    # Focus is back in the text field at once, and stays there when the answer comes.
    assert page.evaluate(FOCUSED) == "#input"
    page.wait_for_function("() => document.querySelectorAll('.bubble.bot').length > 1")
    assert page.evaluate(FOCUSED) == "#input"
    # The greeting's buttons are an earlier message's now: readable, unavailable, not tabbed to.
    for chip in greeting_buttons.all():
        expect(chip).to_be_disabled()
        expect(chip).to_have_attribute("aria-disabled", "true")
        expect(chip).to_have_attribute("tabindex", "-1")
    expect(page.get_by_role("button", name="مقيم / زائر")).to_be_disabled()
    # A click on one (as a script or assistive technology might send) does nothing.
    mine = page.locator(".bubble.me").count()
    page.locator(".chip", has_text="مقيم / زائر").dispatch_event("click")
    assert page.locator(".bubble.me").count() == mine

    send(page, "1000000008")
    # A tap (pointer) on the image code's «رمز جديد» returns the focus to the field too.
    tap(page, "رمز جديد")
    assert page.evaluate(FOCUSED) == "#input"
    # Round from the field, Tab reaches only the newest message's buttons and the send button.
    # (Past the last control the focus leaves for the document, then starts at the top.)
    order = focus_order(page, "Tab")
    assert order == ["#send", "body", "image chip رمز جديد", "image chip 🔊 رمز صوتي", "#input"]
    active = page.locator(".chip:not([aria-disabled])")
    expect(active).to_have_count(2)
    expect(page.locator(".chip[aria-disabled=true]")).to_have_count(6)
