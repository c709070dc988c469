"""End-to-end in a real browser: headless Chromium logs in through the form and sees the host
CPU chart receive new live points within 5 s. With --screenshot it saves the dashboard."""
import argparse
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pulseboard_process import ADMIN_EMAIL, ADMIN_PASSWORD, Server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--screenshot")
    args = parser.parse_args()

    server = Server().start()
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        browser.get(server.url + "/")
        browser.find_element(By.ID, "email").send_keys(ADMIN_EMAIL)
        browser.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
        browser.find_element(By.ID, "login-button").click()
        WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/dashboard"))

        cpu = '#charts section[data-series="host.cpu"]'
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, cpu + "[data-last]"))
        chart = browser.find_element(By.CSS_SELECTOR, cpu)
        WebDriverWait(browser, 10).until(lambda b: chart.get_attribute("data-last"))
        first = int(chart.get_attribute("data-last"))
        started = time.time()
        WebDriverWait(browser, 5).until(lambda b: int(chart.get_attribute("data-last") or 0) > first)
        waited = time.time() - started
        status = browser.find_element(By.ID, "connection").get_attribute("data-state")
        assert status == "live", status
        # The host charts come first, CPU then memory.
        order = [e.get_attribute("data-series") for e in browser.find_elements(By.CSS_SELECTOR, "#charts section")]
        assert order[:2] == ["host.cpu", "host.memory"], order
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        if args.screenshot:
            time.sleep(3)
            browser.save_screenshot(args.screenshot)
        print(f"browser: logged in, CPU chart received a live point {waited:.1f} s after the first")
        print("1 passed, 0 failed")
        return 0
    finally:
        browser.quit()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
