"""A result card in the real browser at 360 px: a drawn status mark in place of the emoji,
and no date or count broken across lines."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from bot.i18n import strip_isolates
from tests.web import test_web_browser as chat

# The page's fixtures (Chromium, one page per test at 360 x 740, Arabic) and helpers.
browser = chat.browser
page = chat.page
console_errors = chat.console_errors

# Lines each bracketed Gregorian date, Hijri date and count of the card spans on screen.
SPANS = """bubble => {
  const spans = [];
  const walker = document.createTreeWalker(bubble, NodeFilter.SHOW_TEXT);
  const pattern = /\\([^)]*\\)|\\d+\\u00a0[^\\s\\d(]+(\\u00a0[^\\s(]+)*|\\d+ [^\\s\\d(]+/g;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    for (const match of node.data.matchAll(pattern)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.bottom)));
      spans.push([match[0], tops.size]);
    }
  }
  return spans;
}"""


def test_the_status_mark_is_drawn_and_dates_and_counts_stay_whole(
    page: Page, console_errors: list[str]
) -> None:
    expect(page.locator(".bubble.bot").first).to_contain_text("مرحبًا!")
    chat.send(page, "3012345678")  # the demo's visitor: 75 days left
    chat.send(page, "123456")
    bubble = page.locator(".bubble.bot").last
    status = bubble.locator(".status")
    expect(status).to_have_class("status status-valid")
    assert strip_isolates(status.inner_text()) == "التأمين سارٍ، ويتبقى على انتهائه 75\u00a0يومًا."
    mark = status.evaluate("line => getComputedStyle(line, '::before').backgroundImage")
    assert mark.startswith('url("data:image/svg+xml')
    assert "✅" not in bubble.inner_text()
    spans = bubble.evaluate(SPANS)
    assert ["(" in text for text, _ in spans].count(True) == 1  # the expiry date's Gregorian part
    assert any(text.startswith("75") for text, _ in spans)
    assert [text for text, lines in spans if lines != 1] == []
    chat.shot(page, "card-visitor")

    chat.tap(page, "استعلام جديد")
    chat.send(page, "2145678906")  # the demo's suspended policy
    chat.send(page, "123456")
    expect(page.locator(".bubble.bot").last.locator(".status")).to_have_class(
        "status status-suspended"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert console_errors == []
