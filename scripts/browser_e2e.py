"""End-to-end in a real browser: headless Chromium logs in through the form and sees the host
CPU chart receive new live points within 5 s; then creates a class on the classes page, opens its
live view while `pulseboard simulate` plays a class, and sees a help request appear within 2 s;
finally a simulated student logs in and sees their class, their events live and an announcement.
With --screenshot / --class-screenshot it saves the dashboard and the class view."""
import argparse
import subprocess
import sys
import tempfile
import time
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pulseboard_process import ADMIN_EMAIL, ADMIN_PASSWORD, Server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--screenshot")
    parser.add_argument("--class-screenshot")
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
        class_live_view(browser, server, args.class_screenshot)
        print("3 passed, 0 failed")
        return 0
    finally:
        browser.quit()
        server.stop()


def class_live_view(browser, server, screenshot):
    # The classes page creates a class (a state-changing call with the session cookie + CSRF header).
    browser.get(server.url + "/classes")
    browser.find_element(By.NAME, "name").send_keys("E2E class <i>1</i>")
    browser.find_element(By.NAME, "code").send_keys("e2e-1")
    browser.find_element(By.CSS_SELECTOR, "#new-class button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "created").is_displayed())
    server_url = browser.find_element(By.ID, "server-url").text
    assert "/api/v1/events?token=pbc_" in server_url, server_url
    token = server_url.split("token=")[1]
    link = browser.find_element(By.CSS_SELECTOR, "#class-list a")
    assert link.text == "E2E class <i>1</i>", link.text  # shown as text, not markup
    link.click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "connection").get_attribute("data-state") == "live")

    binary = server.binary
    simulator = subprocess.Popen([binary, "simulate", "--url", server.url, "--token", token, "--students", "40", "--teams", "5",
                                  "--interval", "1", "--duration", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#students .card")) >= 40)
        # A help request from the extension reaches the instructor's page.
        email = "help-e2e@example.com"
        event = {"eventId": str(uuid.uuid4()), "eventType": "help", "emailAddress": email, "userName": "Needs <b>Help</b>",
                 "teamName": "team-1", "notebookPath": "week1/intro.ipynb", "cellIndex": 7}
        status, _ = server.request("POST", "/api/v1/events?token=" + token, [event], headers={"Origin": "http://localhost:8888"})
        assert status == 200, status
        sent = time.time()
        selector = f'#help .card[data-email="{email}"]'
        WebDriverWait(browser, 2).until(lambda b: b.find_elements(By.CSS_SELECTOR, selector))
        shown = time.time() - sent
        card = browser.find_element(By.CSS_SELECTOR, selector)
        assert "Needs <b>Help</b>" in card.text, card.text  # escaped, never markup
        if screenshot:
            time.sleep(4)
            browser.save_screenshot(screenshot)
        # The instructor helped: the request leaves the pinned list.
        card.find_element(By.CSS_SELECTOR, "button").click()
        WebDriverWait(browser, 5).until(lambda b: not b.find_elements(By.CSS_SELECTOR, selector))
        # A click on a card opens the student's timeline.
        browser.find_element(By.CSS_SELECTOR, "#students .card").click()
        WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline-events li div"))
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        # The roster: a CSV upload through the page reports each refused line.
        browser.find_element(By.CSS_SELECTOR, "#roster summary").click()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as upload:
            upload.write("email,name,team\nnew.student@example.com,New Student,team-9\nnot-an-email,X,team-9\n")
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(upload.name)
        browser.find_element(By.CSS_SELECTOR, "#upload button").click()
        WebDriverWait(browser, 5).until(lambda b: "1 enrolled" in b.find_element(By.ID, "upload-report").text)
        assert "line 3 (not-an-email): not an email address" in browser.find_element(By.ID, "upload-report").text
        WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, '#students .card[data-email="new.student@example.com"]'))
        cards = len(browser.find_elements(By.CSS_SELECTOR, "#students .card"))
        print(f"browser: class live view with {cards} simulated students; a help request appeared {shown:.2f} s after it was sent")
        student_page(browser, server)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)


def student_page(browser, server):
    """A simulated student logs in: their class and their live events, and an admin's announcement."""
    admin = server.login()
    status, body = server.request("POST", "/api/v1/users", {"email": "student001@example.com", "password": "student-password-1",
                                                            "role": "student"}, token=admin)
    assert status == 201, body
    browser.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "login-button"))
    browser.find_element(By.ID, "email").send_keys("student001@example.com")
    browser.find_element(By.ID, "password").send_keys("student-password-1")
    browser.find_element(By.ID, "login-button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#my-classes .card"))
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "connection").get_attribute("data-state") == "live")
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#my-events li"))
    status, _ = server.request("POST", "/api/v1/broadcast", {"message": "Break until <b>11:00</b>"}, token=admin)
    assert status == 202, status
    WebDriverWait(browser, 5).until(lambda b: "Break until <b>11:00</b>" in b.find_element(By.ID, "announcements").text)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    print("browser: a student sees their class, their own events live and an admin's announcement")


if __name__ == "__main__":
    sys.exit(main())
