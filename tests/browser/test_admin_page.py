"""The admin page in a real browser against `apikeys run --demo`: the New API Key window with
each validation error, the token shown once, Advanced Role Configuration reaching /v1/check,
rotate, disable, enable, delete, history and the "why", who may act, the XSS name, CSRF, CSP
and a phone's width."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from contracts import commands as c
from tests.browser.helpers import (
    add_role,
    choose_location,
    create_key,
    created_key_id,
    fill_key,
    no_horizontal_scroll,
    open_new_key_window,
    token_of,
)
from tests.browser.stack import Stack, http


def save(window) -> None:
    window.get_by_role("button", name="Save", exact=True).click()


def test_a_key_is_created_through_the_window_after_each_validation_error(
    page: Page, stack: Stack, screenshots: Path
) -> None:
    # name_required: the service's error beside the Name field
    window = open_new_key_window(page)
    choose_location(window, "Plant 7")
    save(window)
    window = page.get_by_role("dialog", name="New API Key")
    expect(window.locator("[data-error=name]")).to_have_text("Give the key a name.")
    # locations_required
    window.get_by_role(
        "button", name="Remove location Headquarters / North Region / Plant 7"
    ).click()
    window.get_by_label("Name").fill("Nightly export")
    save(window)
    window = page.get_by_role("dialog", name="New API Key")
    expect(window.locator("[data-error=locations]")).to_have_text(
        "Choose at least one network location."
    )
    # unknown_location: a location removed by the directory while the window is open
    temp = f"temp-{uuid.uuid4().hex[:8]}"
    (defined,) = stack.send(
        c.DefineLocation(
            command_id=f"define-{temp}",
            organization_id="demo",
            location_id=temp,
            name=f"Pop-up {temp}",
            parent_id="hq",
        )
    )
    window = open_new_key_window(page, after=defined.position)
    fill_key(window, "Nightly export", [f"Pop-up {temp}"], ["Exporter"])
    stack.send(
        c.RemoveLocation(command_id=f"remove-{temp}", organization_id="demo", location_id=temp)
    )
    save(window)
    window = page.get_by_role("dialog", name="New API Key")
    expect(window.locator("[data-error=locations]")).to_contain_text("no longer exists")
    expect(window.get_by_label("Name")).to_have_value("Nightly export")
    # the window as the reference shows it, then success: the token shown once
    window.get_by_role("button", name=f"Remove location {temp}").click()
    choose_location(window, "Line 1")
    choose_location(window, "plant 9")
    save(window)
    key_id, token = created_key_id(page), token_of(page)
    assert token.startswith("apk_")
    verified = stack.verify(token)
    assert (verified["valid"], verified["key_id"]) == (True, key_id)
    assert stack.check(key_id, "view_private", "line-1")["allowed"] is True
    # the list shows it with its locations, roles, status and who made it
    page.get_by_role("link", name="Back to API Keys").click()
    row = page.get_by_role("row").filter(has_text="Nightly export")
    expect(row).to_contain_text("Headquarters / North Region / Plant 7 / Line 1")
    expect(row).to_contain_text("Exporter")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("dev")
    # the token is never shown again: neither on the list nor on the key's page
    assert token not in page.content()
    page.goto(f"/orgs/demo/keys/{key_id}")
    assert token not in page.content()


def test_an_unchecked_grid_cell_makes_check_deny_that_role_at_that_location(
    page: Page, stack: Stack, screenshots: Path
) -> None:
    window = open_new_key_window(page)
    cog = window.get_by_role("button", name="Advanced Role Configuration")
    fill_key(window, "Grid key", ["Plant 7"], ["Viewer"])
    expect(cog).to_be_disabled()  # one location only
    choose_location(window, "Plant 9")
    add_role(window, "Item Editor")
    expect(cog).to_be_enabled()
    window.get_by_label("Name").focus()
    window.screenshot(path=str(screenshots / "new-api-key-window.png"))
    cog.click()
    grid = page.get_by_role("dialog", name="Advanced Role Configuration")
    expect(grid).to_be_visible()
    cells = grid.get_by_role("checkbox")
    expect(cells).to_have_count(4)
    for n in range(4):
        expect(cells.nth(n)).to_be_checked()  # every cell checked by default
    grid.get_by_role("checkbox", name="Viewer at Headquarters / South Region / Plant 9").uncheck()
    grid.screenshot(path=str(screenshots / "advanced-role-configuration.png"))
    grid.get_by_role("button", name="Save").click()
    expect(grid).to_be_hidden()
    save(window)
    key_id = created_key_id(page)
    assert stack.check(key_id, "view", "plant-9")["allowed"] is False
    assert stack.check(key_id, "view", "plant-7")["allowed"] is True
    assert stack.check(key_id, "comment", "plant-9")["allowed"] is True
    page.get_by_role("link", name="Back to API Keys").click()
    expect(page.get_by_role("link", name="Grid key")).to_be_visible()
    page.screenshot(path=str(screenshots / "api-keys-list.png"), full_page=True)
    page.goto(f"/orgs/demo/keys/{key_id}")
    # on the key's page the grid shows the cell unchecked; checking it again gives the right back
    edit = page.locator("form[data-key-form]")
    edit.get_by_role("button", name="Advanced Role Configuration").click()
    grid = page.get_by_role("dialog", name="Advanced Role Configuration")
    cell = grid.get_by_role("checkbox", name="Viewer at Headquarters / South Region / Plant 9")
    expect(cell).not_to_be_checked()
    cell.check()
    grid.get_by_role("button", name="Save").click()
    edit.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("[data-key-status]")).to_have_text("active")
    assert stack.check(key_id, "view", "plant-9")["allowed"] is True


def test_rotate_disable_enable_rename_explain_and_delete(page: Page, stack: Stack) -> None:
    key_id, first_token = create_key(page, "Lifecycle", ["North Region"], ["Viewer"])
    page.get_by_role("link", name="Go to the key").click()
    # rotate with a grace period: the new token once, the old one still works meanwhile
    page.get_by_label("Keep the old token working for").select_option(label="1 hour")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", name="Secret rotated")).to_be_visible()
    expect(page.get_by_text("The previous token keeps working for: 1 hour.")).to_be_visible()
    second_token = token_of(page)
    assert second_token != first_token
    assert stack.verify(second_token)["valid"] is True
    assert stack.verify(first_token)["valid"] is True
    page.get_by_role("link", name="Go to the key").click()
    # disable, then enable
    page.get_by_role("button", name="Disable key").click()
    expect(page.locator("[data-key-status]")).to_have_text("disabled")
    assert stack.check(key_id, "view", "plant-7")["denied_because"] == "disabled"
    page.get_by_role("button", name="Enable key").click()
    expect(page.locator("[data-key-status]")).to_have_text("active")
    assert stack.check(key_id, "view", "plant-7")["allowed"] is True
    # rename through the edit form
    page.locator("form[data-key-form]").get_by_label("Name").fill("Lifecycle renamed")
    page.locator("form[data-key-form]").get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lifecycle renamed")
    # history: who did what, newest first
    history = page.locator("table.history")
    for what in ("Created the key", "Rotated the secret", "Disabled the key", "Enabled the key"):
        expect(history).to_contain_text(what)
    expect(history.get_by_role("row").nth(1)).to_contain_text("Renamed the key")
    expect(history.get_by_role("row").nth(1)).to_contain_text("name: Lifecycle renamed")
    expect(history).to_contain_text("dev")
    # why: a readable chain from the audit API
    page.get_by_label("Permission").select_option("view")
    page.get_by_label("Location", exact=True).select_option(
        label="Headquarters / North Region / Plant 7 / Line 1"
    )
    page.get_by_role("button", name="Explain").click()
    why = page.locator("[data-why]")
    expect(why).to_contain_text("Allowed")
    expect(why).to_contain_text("Viewer")
    expect(why).to_contain_text("Plant 7 is under")
    # delete, after a confirmation that says it is permanent
    page.get_by_role("link", name="Delete key").click()
    expect(page.get_by_text("Deleting is permanent.")).to_be_visible()
    page.get_by_role("button", name="Delete permanently").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()
    expect(page.get_by_role("link", name="Lifecycle renamed")).to_have_count(0)
    assert stack.check(key_id, "view", "plant-7")["denied_because"] == "deleted"


def test_a_person_without_api_administrator_sees_why_and_no_action(browser, stack: Stack) -> None:
    context = browser.new_context(
        base_url=stack.sso_admin, extra_http_headers={"X-Forwarded-User": "mallory"}
    )
    try:
        page = context.new_page()
        response = page.goto("/orgs/demo/keys")
        assert response is not None and response.status == 403
        expect(page.get_by_text("API Administrator")).to_be_visible()
        expect(page.get_by_role("link", name="Create API Key")).to_have_count(0)
        expect(page.locator("form")).to_have_count(0)
        # nor can the form be sent around the page
        refused = context.request.post("/orgs/demo/keys", form={"name": "sneaky", "location": "hq"})
        assert refused.status == 403
    finally:
        context.close()
    # the same service signs in an API Administrator named by the proxy's header
    (granted,) = stack.send(
        c.GrantApiAdministrator(command_id="grant-alice", organization_id="demo", user_id="alice")
    )
    context = browser.new_context(
        base_url=stack.sso_admin, extra_http_headers={"X-Forwarded-User": "alice"}
    )
    try:
        page = context.new_page()
        page.goto(f"/orgs/demo/keys?after={granted.position}")
        expect(page.get_by_role("link", name="Create API Key")).to_be_visible()
        expect(page.get_by_text("Signed in as alice")).to_be_visible()
    finally:
        context.close()
    # without the header nobody is signed in
    context = browser.new_context(base_url=stack.sso_admin)
    try:
        page = context.new_page()
        response = page.goto("/orgs/demo/keys")
        assert response is not None and response.status == 401
        expect(page.get_by_text("You are not signed in")).to_be_visible()
    finally:
        context.close()


def test_an_organization_with_the_api_module_off_offers_no_action(page: Page, stack: Stack) -> None:
    *_, last = stack.send(
        c.GrantApiAdministrator(command_id="off-admin", organization_id="off-org", user_id="dev"),
        c.DefineLocation(
            command_id="off-loc",
            organization_id="off-org",
            location_id="x",
            name="X",
            parent_id=None,
        ),
    )
    response = page.goto(f"/orgs/off-org/keys?after={last.position}")
    assert response is not None and response.status == 403
    expect(page.get_by_text("The API module is not enabled")).to_be_visible()
    expect(page.get_by_role("link", name="Create API Key")).to_have_count(0)
    expect(page.locator("form")).to_have_count(0)


def test_a_key_named_like_a_script_is_shown_as_text(page: Page, stack: Stack) -> None:
    name = "<script>alert(1)</script>"
    key_id, _ = create_key(page, name, ["Plant 9"], ["Viewer"])
    page.get_by_role("link", name="Back to API Keys").click()
    expect(page.get_by_role("link", name=name)).to_be_visible()
    page.goto(f"/orgs/demo/keys/{key_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    assert page.alerts == []  # type: ignore[attr-defined]
    served = page.request.get(f"/orgs/demo/keys/{key_id}").text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in served
    assert name not in served


def test_every_page_sets_a_strict_policy_and_forms_need_the_csrf_token(
    page: Page, stack: Stack
) -> None:
    response = page.goto("/orgs/demo/keys")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    forged = page.request.post("/orgs/demo/keys", form={"name": "forged", "location": "hq"})
    assert forged.status == 403
    keys = http(f"{stack.projections}/v1/organizations/demo/api-keys")[1]["keys"]
    assert not any(k["name"] == "forged" for k in keys)


def test_the_pages_fit_a_phone_without_horizontal_scrolling(browser, stack: Stack) -> None:
    context = browser.new_context(base_url=stack.admin, viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        key_id, _ = create_key(
            page,
            "Phone-sized key with a rather long name",
            ["Line 1", "Plant 9"],
            ["Viewer", "Exporter"],
        )
        page.goto("/orgs/demo/keys")
        assert no_horizontal_scroll(page)
        page.get_by_role("link", name="Create API Key").click()
        assert no_horizontal_scroll(page)
        page.goto(f"/orgs/demo/keys/{key_id}")
        assert no_horizontal_scroll(page)
    finally:
        context.close()


def test_the_new_api_key_window_works_from_the_keyboard(page: Page, stack: Stack) -> None:
    page.goto("/orgs/demo/keys")
    page.get_by_role("link", name="Create API Key").focus()
    page.keyboard.press("Enter")
    window = page.get_by_role("dialog", name="New API Key")
    expect(window.get_by_label("Name")).to_be_focused()
    page.keyboard.type("Keyboard key")
    page.keyboard.press("Tab")
    search = window.get_by_role("combobox", name="Search locations")
    expect(search).to_be_focused()
    for text in ("Plant 9", "Line 1"):
        page.keyboard.type(text)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(window.get_by_role("button", name="Add roles")).to_be_focused()
    page.keyboard.press("Enter")
    expect(window.get_by_role("checkbox", name="Exporter")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Escape")
    expect(window.get_by_role("button", name="Add roles")).to_be_focused()
    page.keyboard.press("Tab")
    expect(window.get_by_role("button", name="Advanced Role Configuration")).to_be_focused()
    page.keyboard.press("Enter")
    grid = page.get_by_role("dialog", name="Advanced Role Configuration")
    first = grid.get_by_role("checkbox", name="Exporter at Headquarters / South Region / Plant 9")
    expect(first).to_be_focused()
    page.keyboard.press("Space")
    for _ in range(3):  # the other cell, Cancel, Save
        page.keyboard.press("Tab")
    expect(grid.get_by_role("button", name="Save")).to_be_focused()
    page.keyboard.press("Enter")
    expect(grid).to_be_hidden()
    window.get_by_role("button", name="Save", exact=True).focus()
    page.keyboard.press("Enter")
    key_id = created_key_id(page)
    assert stack.check(key_id, "view_private", "plant-9")["allowed"] is False
    assert stack.check(key_id, "view_private", "line-1")["allowed"] is True
