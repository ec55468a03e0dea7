"""A real headless Chromium for the dashboard tests and the README's screenshots (Debian's ``chromium`` package,
driven by Playwright with ``executable_path``: nothing is downloaded).

``Visit`` opens one page and records what a person's browser would show as wrong: console errors, uncaught
page errors, and every request to a host other than the one allowed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def available() -> bool:
    return shutil.which(CHROMIUM) is not None


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(slots=True)
class Visit:
    """One page load: the page, and the console errors and foreign requests seen while it loaded."""

    page: Page
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


@contextmanager
def visit(browser: Browser, url: str, *, allowed_host: str | None) -> Iterator[Visit]:
    """Load ``url``; requests to any host but ``allowed_host`` (None: no host at all, a file) are refused."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = Visit(page=page)
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))

    def guard(route, request) -> None:  # type: ignore[no-untyped-def]
        parts = urlsplit(request.url)
        if parts.scheme in ("file", "data", "about") or parts.netloc == allowed_host:
            route.continue_()
        else:
            seen.foreign.append(request.url)
            route.abort()

    page.route("**/*", guard)
    response = page.goto(url)
    if url.startswith("http"):
        assert response is not None and response.status < 400, f"{url} did not load"
    try:
        yield seen
    finally:
        page.close()


def screenshot(seen: Visit, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    seen.page.screenshot(path=str(path), full_page=True)
