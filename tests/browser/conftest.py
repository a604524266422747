"""The browser tier: a real headless Chromium (Debian's `chromium`, driven by Playwright; no
browser is downloaded) against `apikeys run --demo`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.stack import Stack

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).parents[2] / "docs" / "screenshots"


# module scope, not session: Playwright's synchronous API keeps an event loop running in this
# thread while it is open, which no later test of the run (asyncio) could bear
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`apikeys run --demo` for the module's tests."""
    running = Stack(tmp_path_factory.mktemp("stack"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("the browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack: Stack) -> Iterator[object]:
    context = browser.new_context(base_url=stack.admin, viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    alerts: list[str] = []
    opened.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    opened.alerts = alerts
    yield opened
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save their screenshots: docs/screenshots with
    APIKEYS_UPDATE_SCREENSHOTS=1 (the committed ones), else a temporary folder."""
    if os.environ.get("APIKEYS_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        return DOCS
    return tmp_path_factory.mktemp("screenshots")
