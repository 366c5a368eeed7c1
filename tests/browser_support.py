"""Playwright for Python driving the system's Chromium (Debian's ``chromium`` package): no
browser download. Shared by the console tests and scripts/console-screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # the dev extra not installed
    sync_playwright = None  # type: ignore[assignment]

MISSING_REASON = (
    "no chromium on PATH (apt-get install chromium)"
    if CHROMIUM is None
    else "playwright is not installed (pip install -c constraints.txt -e '.[dev]')"
    if sync_playwright is None
    else ""
)
if MISSING_REASON and os.environ.get("AGENTHUB_REQUIRE_CHROMIUM") == "1":
    raise RuntimeError(f"{MISSING_REASON}, and CI requires it (AGENTHUB_REQUIRE_CHROMIUM=1)")


@contextmanager
def chromium() -> Iterator[Browser]:
    assert sync_playwright is not None and CHROMIUM is not None
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


# Set up before any page script runs (Playwright injects it outside the page's CSP): CSP
# violations are events, not only console lines.
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


@dataclass
class Watched:
    """A page with what went wrong on it: console errors, uncaught errors, dialogs."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.csp_violations() == []


def watched_page(browser: Browser, **context: Any) -> Watched:
    page = browser.new_context(**context).new_page()
    w = Watched(page)
    page.add_init_script(_WATCH_CSP)
    page.on("console", lambda m: w.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(f"uncaught: {e}"))

    def on_dialog(d: Any) -> None:
        w.dialogs.append(f"{d.type}: {d.message}")
        d.accept()

    page.on("dialog", on_dialog)
    return w


def sign_in(w: Watched, base_url: str, api_token: str) -> None:
    w.page.goto(base_url + "/")
    w.page.fill("#token", api_token)
    w.page.click("#signin-form button[type=submit]")
    w.page.wait_for_selector("#top:not([hidden])")
    w.page.wait_for_selector("#live[data-state=online]")
