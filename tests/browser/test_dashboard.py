"""The dashboard in headless Chromium: sign in, the demo's escalations, filter, one escalation's
timeline picture, a live update after a command posted through the API, sign out."""

from __future__ import annotations

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as when
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import ANALYST_TOKEN, MANAGER_TOKEN, Dashboard, screenshot

NEW_ESCALATION = {
    "customer": "Pied Piper",
    "region": "EMEA",
    "account_owner": "gavin.owner",
    "dri_manager": "mia.manager",
    "source": "customer_success",
    "severity": "high",
    "summary": "Exports time out",
}


def sign_in(browser: webdriver.Chrome, dashboard: Dashboard, token: str) -> None:
    browser.get(f"{dashboard.url}/")
    WebDriverWait(browser, 10).until(when.presence_of_element_located((By.ID, "token")))
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 10).until(when.presence_of_element_located((By.ID, "signout")))


def customers(browser: webdriver.Chrome) -> list[str]:
    return [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#escalations tbody td:nth-child(2) a")]


def shows(browser: webdriver.Chrome, expected: list[str], what: str) -> None:
    """Wait for the list to show exactly these customers (a live refresh may swap the table meanwhile)."""
    WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: sorted(customers(b)) == sorted(expected),
        message=f"the active list never showed {expected} ({what}); it showed {customers(browser)}",
    )


def test_a_manager_signs_in_filters_opens_one_watches_it_change_and_signs_out(
    browser: webdriver.Chrome, dashboard: Dashboard
) -> None:
    browser.get(f"{dashboard.url}/")
    assert "/signin" in browser.current_url
    screenshot(browser, "signin")

    sign_in(browser, dashboard, MANAGER_TOKEN)
    assert browser.find_element(By.CSS_SELECTOR, ".who").text == "mia.manager (manager)"
    shows(browser, ["Hooli", "Initech", "Umbrella"], "the demo's active escalations")
    assert "Globex" in browser.find_element(By.ID, "closed").text
    screenshot(browser, "active")

    hooli = browser.find_element(By.XPATH, "//table[@id='escalations']//tr[td//a[text()='Hooli']]")
    assert "overdue" in hooli.text, f"the demo's silent Hooli escalation shows no overdue badge: {hooli.text}"

    Select(browser.find_element(By.ID, "filter-region")).select_by_visible_text("AMER")
    WebDriverWait(browser, 10).until(lambda b: "region=AMER" in b.current_url)
    shows(browser, ["Initech"], "filtered by region AMER")

    browser.get(f"{dashboard.url}/")
    browser.find_element(By.LINK_TEXT, "Globex").click()
    picture = WebDriverWait(browser, 10).until(when.presence_of_element_located((By.CSS_SELECTOR, "svg.swimlane")))
    kinds = {m.get_attribute("class") for m in picture.find_elements(By.CSS_SELECTOR, "g.mark")}
    assert {"mark update", "mark further", "mark emergency", "mark closed"} <= kinds
    assert picture.find_elements(By.CSS_SELECTOR, "g.stall"), "the Globex story stalls; the picture shows no stall"
    assert browser.find_element(By.ID, "markdown-export").get_attribute("href").endswith("/retrospective?format=md")
    screenshot(browser, "escalation")

    browser.get(f"{dashboard.url}/team")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.heatmap g.cell")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.bars g.bar")
    screenshot(browser, "team")

    browser.get(f"{dashboard.url}/")
    browser.execute_script("window.notReloaded = true")
    with dashboard.api() as api:
        opened = api.post("/escalations", json=NEW_ESCALATION)
    assert opened.status_code == 201, opened.text
    shows(
        browser, ["Hooli", "Initech", "Pied Piper", "Umbrella"], "Pied Piper opened through the API, without a reload"
    )
    assert browser.execute_script("return window.notReloaded") is True

    browser.find_element(By.ID, "signout").click()
    WebDriverWait(browser, 10).until(when.presence_of_element_located((By.ID, "token")))
    browser.get(f"{dashboard.url}/team")
    assert "/signin" in browser.current_url


def test_an_analyst_sees_no_manager_controls(browser: webdriver.Chrome, dashboard: Dashboard) -> None:
    sign_in(browser, dashboard, ANALYST_TOKEN)
    browser.find_element(By.LINK_TEXT, "Initech").click()
    WebDriverWait(browser, 10).until(when.presence_of_element_located((By.CSS_SELECTOR, "svg.swimlane")))

    assert browser.find_element(By.CSS_SELECTOR, ".who").text == "nat.analyst (analyst)"
    assert not browser.find_elements(By.CSS_SELECTOR, "section.commands")
    assert not browser.find_elements(By.LINK_TEXT, "API")


def test_on_a_phone_nothing_runs_off_the_side_and_the_keyboard_reaches_every_escalation(
    browser: webdriver.Chrome, dashboard: Dashboard
) -> None:
    sign_in(browser, dashboard, MANAGER_TOKEN)
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{dashboard.url}/")
        WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: {"Initech", "Umbrella"} <= set(customers(b)),
            message="the active list at phone width never showed the demo's Initech and Umbrella",
        )
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        screenshot_at_phone = screenshot(browser, "active-phone", width=390)

        focused: list[str] = []
        body = browser.find_element(By.TAG_NAME, "body")
        body.click()
        for _ in range(60):
            if {"Initech", "Umbrella"} <= set(focused):
                break
            try:  # a live refresh may swap the table under the focus; Tab on from wherever it lands
                browser.switch_to.active_element.send_keys(Keys.TAB)
                focused.append(browser.switch_to.active_element.text)
            except StaleElementReferenceException:
                continue
    finally:
        browser.set_window_size(1280, 900)

    assert overflow <= 0, f"the page is {overflow}px wider than a 390px phone screen ({screenshot_at_phone})"
    assert {"Initech", "Umbrella"} <= set(focused), f"Tab never reached the escalations; it visited {focused}"
