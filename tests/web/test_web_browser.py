"""The web chat in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

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
def page(browser: Browser, web_chat: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ar-SA")
    page = context.new_page()
    page.goto(web_chat)
    yield page
    context.close()


def bot_bubbles(page: Page) -> list[str]:
    return [
        t.replace("\u2066", "").replace("\u2068", "").replace("\u2069", "")
        for t in page.locator(".bubble.bot").all_inner_texts()
    ]


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


def test_citizen_lookup_with_a_wrong_number_and_a_wrong_code(page: Page) -> None:
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
    assert "التأمين ساري" in card and "بوبا العربية" in card and "1*******08" in card
    shot(page, "3-result")
    # Nothing overflows a 360 px wide phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


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
