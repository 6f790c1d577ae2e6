from __future__ import annotations

from playwright.sync_api import expect


def test_dashboard_loads_with_its_styles_scripts_and_no_errors(browser, coordhub_server):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    response = page.goto(coordhub_server.url + "/")

    assert response.status == 200
    assert page.title() == "coordhub"
    assert page.get_by_test_id("slot-usage").inner_text() == "0 / 3"
    assert "5 of 5 starts left" in page.get_by_test_id("budget").inner_text()
    radius = page.evaluate("getComputedStyle(document.querySelector('.panel')).borderRadius")
    assert radius == "8px", "the stylesheet was not served"
    # Locators, not wait_for_function: the page's CSP forbids the eval it polls with.
    expect(page.locator("body")).to_have_attribute("data-tab-role", "leader")
    expect(page.get_by_test_id("tab-role")).to_have_text(
        "This tab fetches updates; no other tab is open."
    )
    assert problems == []
    page.close()
