"""What a person does on the page, as Playwright steps."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect


def open_new_key_window(page: Page, after: int | None = None) -> Any:
    page.goto("/orgs/demo/keys" + (f"?after={after}" if after else ""))
    page.get_by_role("link", name="Create API Key").click()
    window = page.get_by_role("dialog", name="New API Key")
    expect(window).to_be_visible()
    return window


def choose_location(scope: Any, text: str) -> None:
    search = scope.get_by_role("combobox", name="Search locations")
    search.fill(text)
    search.press("Enter")


def add_role(scope: Any, name: str) -> None:
    scope.get_by_role("button", name="Add roles").click()
    scope.get_by_role("checkbox", name=name, exact=True).check()
    scope.get_by_role("checkbox", name=name, exact=True).press("Escape")


def fill_key(
    window: Any,
    name: str,
    locations: list[str],
    roles: list[str] = (),  # type: ignore[assignment]
) -> None:
    window.get_by_label("Name").fill(name)
    for location in locations:
        choose_location(window, location)
    for role in roles:
        add_role(window, role)


def created_key_id(page: Page) -> str:
    """The key id from the token page's link to the key."""
    href = page.get_by_role("link", name="Go to the key").get_attribute("href") or ""
    match = re.search(r"/keys/([^/?]+)", href)
    assert match, href
    return match.group(1)


def token_of(page: Page) -> str:
    expect(page.get_by_text("shown only this once")).to_be_visible()
    return page.get_by_role("textbox", name="Token").input_value()


def create_key(page: Page, name: str, locations: list[str], roles: list[str]) -> tuple[str, str]:
    window = open_new_key_window(page)
    fill_key(window, name, locations, roles)
    window.get_by_role("button", name="Save", exact=True).click()
    return created_key_id(page), token_of(page)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
