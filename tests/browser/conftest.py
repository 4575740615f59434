"""A real headless Chromium for the tests in this folder: Debian's package, driven by
Playwright (never a downloaded browser build). Screenshots go to
test-artifacts/browser/ (factories.SCREENSHOTS)."""

import os
import shutil
from pathlib import Path

import pytest

from tests.factories import REQUIRE_SERVICES, SCREENSHOTS

CHROMIUM = os.environ.get("PIPAL_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Flags for a closed network and a root user (see the machine notes): no sandbox, no
# background requests.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def browser(monkeypatch_module):
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message + "; PIPAL_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # here are still plain synchronous code.
    monkeypatch_module.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
