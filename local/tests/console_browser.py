"""The console in Debian's chromium, driven through chromedriver by Selenium.

Arguments: the console's URL, a failed run, its reject ratio, a file to check, the folder for
screenshots. Exits non-zero (with the assertion) when a page does not do what it should.
"""

import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

url, failed_run, ratio, upload, shots = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]

options = Options()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1500"]:
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(120)


def resources_outside():
    """What the page loaded from anywhere but the console."""
    names = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [name for name in names if not name.startswith(url)]


def present(element_id):
    """The element, once the page that has it loaded (a click's navigation may still run)."""
    return WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.ID, element_id)))


def gone(element):
    """Whether the page holding `element` was replaced (a stale node is reported in more than
    one way while the next page loads)."""
    try:
        element.is_enabled()
        return False
    except WebDriverException:
        return True


def status_now():
    """The execution's status badge, or None while a reload (the page's own, every two
    seconds while it runs) replaces the page."""
    try:
        return driver.find_element(By.CSS_SELECTOR, ".panel .badge").get_attribute("data-status")
    except WebDriverException:
        return None


def visit(state):
    return driver.find_element(By.CSS_SELECTOR, f'g[data-state="{state}"]').get_attribute("data-visit")


try:
    # The executions list, every run failed in Load.
    driver.get(url + "/")
    rows = driver.find_elements(By.CSS_SELECTOR, "#executions tbody tr")
    assert rows, "the list shows the executions"
    statuses = {badge.get_attribute("data-status") for badge in driver.find_elements(By.CSS_SELECTOR, "#executions .badge")}
    assert statuses == {"FAILED"}, statuses
    driver.save_screenshot(f"{shots}/executions.png")

    # A failed execution, opened from the list.
    driver.find_element(By.LINK_TEXT, failed_run).click()
    present("graph")
    assert driver.current_url.endswith(f"/executions/{failed_run}"), driver.current_url
    assert visit("Load") == "failed", visit("Load")
    assert visit("Ingest") == "succeeded"
    assert "InjectedFault" in driver.find_element(By.ID, "failure").text
    driver.save_screenshot(f"{shots}/failed.png")

    # Re-drive pressed: the page comes back once the run resumed, and it succeeded.
    before = driver.find_element(By.ID, "run")
    driver.find_element(By.ID, "redrive").click()
    WebDriverWait(driver, 60).until(lambda _: gone(before))
    deadline = time.time() + 120
    status = None
    while time.time() < deadline:
        status = status_now()
        if status not in (None, "RUNNING"):
            break
        time.sleep(1)
    # The run is over: reload once more so nothing replaces the page under the checks below.
    driver.refresh()
    present("graph")
    status = status_now()
    assert status.startswith("SUCCEEDED"), status
    assert visit("Load") == "succeeded" and visit("Done") == "succeeded", (visit("Load"), visit("Done"))
    assert not driver.find_elements(By.ID, "redrive"), "no Re-drive once it succeeded"
    driver.save_screenshot(f"{shots}/redriven.png")

    # The quality chart shows the run's reject ratio.
    driver.get(url + "/quality?dataset=sales")
    points = driver.find_elements(By.CSS_SELECTOR, "#ratio-chart circle.ratio")
    shown = {point.get_attribute("data-run"): float(point.get_attribute("data-ratio")) for point in points}
    assert failed_run in shown and abs(shown[failed_run] - ratio) < 1e-6, (shown, ratio)
    assert driver.find_element(By.ID, "rows-chart").is_displayed()
    driver.save_screenshot(f"{shots}/quality.png")
    outside = resources_outside()
    assert not outside, outside

    # A file checked from the form.
    driver.get(url + "/check")
    driver.find_element(By.ID, "file").send_keys(upload)
    driver.find_element(By.ID, "check").click()
    valid = int(present("valid").text)
    rejected = int(driver.find_element(By.ID, "rejected").text)
    assert valid > 0 and rejected > 0, (valid, rejected)
    driver.save_screenshot(f"{shots}/check.png")

    print(json.dumps({"redriven": failed_run, "reject_ratio": shown[failed_run], "checked": {"valid": valid, "rejected": rejected}}))
except Exception:
    # What the page said, for the test's message.
    print(f"at {driver.current_url}:\n{driver.find_element(By.TAG_NAME, 'body').text}", file=sys.stderr)
    raise
finally:
    driver.quit()
