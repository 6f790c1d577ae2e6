from __future__ import annotations


def test_home_page_shows_the_configured_limits(browser, coordhub_server):
    page = browser.new_page()

    response = page.goto(coordhub_server.url + "/")

    assert response.status == 200
    assert page.title() == "coordhub"
    assert page.get_by_test_id("profile").inner_text() == "testing"
    assert page.get_by_test_id("slots").inner_text() == "3"
    assert page.get_by_test_id("rate").inner_text() == "5"
    radius = page.evaluate("getComputedStyle(document.querySelector('.panel')).borderRadius")
    assert radius == "8px", "the stylesheet was not served"
    page.close()
