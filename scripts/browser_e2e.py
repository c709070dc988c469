"""End-to-end in a real browser: headless Chromium logs in through the form and sees the host
CPU chart receive new live points within 5 s; then, as an instructor would, creates a class on
the classes page, opens its live view while `pulseboard simulate` plays a class, sees a help
request appear within 2 s, enrols students from a CSV file, creates an assignment on the
simulated notebook and watches the class work on it. In a second browser a simulated student
logs in, hands in a notebook, and sees the grade the instructor gives appear live, then an
admin's announcement. Last, the co-instructor has the class page open when the owner removes
them: the page says the class is no longer theirs to follow. With --screenshot / --class-screenshot / --assignment-screenshot /
--student-screenshot it saves the dashboard, the class view, the assignment page and the
student's page."""
import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from pulseboard_process import ADMIN_EMAIL, ADMIN_PASSWORD, Server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--screenshot")
    parser.add_argument("--class-screenshot")
    parser.add_argument("--assignment-screenshot")
    parser.add_argument("--student-screenshot")
    args = parser.parse_args()

    server = Server().start()
    browser = new_browser()
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
        no_errors(browser)
        if args.screenshot:
            time.sleep(3)
            browser.save_screenshot(args.screenshot)
        print(f"browser: logged in, CPU chart received a live point {waited:.1f} s after the first")
        class_live_view(browser, server, args)
        request_log_page(browser, server)
        stray_events(browser, server)
        print("7 passed, 0 failed")
        return 0
    finally:
        browser.quit()
        server.stop()


def new_browser():
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def no_errors(browser, expected=None):
    """No error in the browser's console since the last call, but for the refusal a step provoked."""
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert all(expected and expected in entry["message"] for entry in errors), errors


def class_live_view(browser, server, args):
    # The classes page creates a class (a state-changing call with the session cookie + CSRF header).
    browser.get(server.url + "/classes")
    browser.find_element(By.NAME, "name").send_keys("E2E class <i>1</i>")
    browser.find_element(By.NAME, "code").send_keys("e2e-1")
    browser.find_element(By.CSS_SELECTOR, "#new-class button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "created").is_displayed())
    server_url = browser.find_element(By.ID, "server-url").text
    # Absolute, on the address the browser used: pasted into JupyterLab as it is.
    assert server_url.startswith(server.url + "/api/v1/events?token=pbc_"), server_url
    token = server_url.split("token=")[1]
    link = browser.find_element(By.CSS_SELECTOR, "#class-list a")
    assert link.text == "E2E class <i>1</i>", link.text  # shown as text, not markup
    link.click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "connection").get_attribute("data-state") == "live")
    # A new class page says where its students will come from.
    assert "No students yet" in browser.find_element(By.ID, "students").text
    # The class page shows the same serverUrl again.
    browser.find_element(By.ID, "show-server-url").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "server-url").text == server_url)
    class_url = browser.current_url

    binary = server.binary
    simulator = subprocess.Popen([binary, "simulate", "--url", server.url, "--token", token, "--students", "40", "--teams", "5",
                                  "--interval", "1", "--duration", "120"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
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
        assert "cell 8" in card.text, card.text  # index 7: cells are numbered as JupyterLab shows them
        summary = browser.find_element(By.ID, "summary").text
        assert re.match(r"\d+ students · ", summary), summary
        assert any("last active just now" in c.text for c in browser.find_elements(By.CSS_SELECTOR, "#students .card"))
        if args.class_screenshot:
            time.sleep(4)
            browser.save_screenshot(args.class_screenshot)
        # The instructor helped: the request leaves the pinned list, and the extension's next
        # repeat (the student's button is still on) does not bring it back.
        card.find_element(By.CSS_SELECTOR, "button").click()
        WebDriverWait(browser, 5).until(lambda b: not b.find_elements(By.CSS_SELECTOR, selector))
        repeat = dict(event, eventId=str(uuid.uuid4()), eventTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        status, _ = server.request("POST", "/api/v1/events?token=" + token, [repeat], headers={"Origin": "http://localhost:8888"})
        assert status == 200, status
        class_id = class_url.rstrip("/").split("/")[-1]
        admin = server.login()

        def repeat_applied(_):
            students = server.request("GET", f"/api/v1/classes/{class_id}/progress", token=admin)[1]["students"]
            student = next(s for s in students if s["email"] == email)
            return student["lastActivity"].startswith(repeat["eventTime"][:19]) and student
        student = WebDriverWait(browser, 10).until(repeat_applied)
        assert student.get("helpRequest") is None and student["helped"]["by"], student
        student_card = f'#students .card[data-email="{email}"]'
        WebDriverWait(browser, 5).until(lambda b: "helped by" in b.find_element(By.CSS_SELECTOR, student_card).text)
        time.sleep(0.5)  # the live update of the repeat, had it opened a request
        assert not browser.find_elements(By.CSS_SELECTOR, selector), "a repeat reopened a request the instructor closed"
        # The student's timeline folds the repeats, and leaves the toolbar's buttons reachable.
        browser.find_element(By.CSS_SELECTOR, student_card).click()
        WebDriverWait(browser, 5).until(lambda b: "asked 2 times" in b.find_element(By.ID, "timeline-events").text)
        on_top = browser.execute_script(
            "const box = document.getElementById('show-server-url').getBoundingClientRect();"
            "return document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2).id")
        assert on_top == "show-server-url", f"the timeline covers the toolbar ({on_top})"
        browser.find_element(By.ID, "timeline-close").click()
        # The error hot spots: the simulated students fail some cells (reopened until they have).
        def hot_spots(b):
            summary = b.find_element(By.CSS_SELECTOR, "#hot-spots summary")
            summary.click()
            if b.find_element(By.ID, "hot-spots").get_attribute("open") is None:
                summary.click()
            time.sleep(0.5)
            return "failed run" in b.find_element(By.ID, "hot-spot-list").text
        WebDriverWait(browser, 20).until(hot_spots)
        assert re.search(r"cell \d+: \d+ failed runs?", browser.find_element(By.ID, "hot-spot-list").text)
        # A click on a simulated student's card (the simulator's events carry a session) opens
        # the timeline; one working session at a time, with the cells run in it.
        browser.find_element(By.CSS_SELECTOR, '#students .card[data-email="student001@example.com"]').click()
        WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline-events li div"))
        WebDriverWait(browser, 5).until(lambda b: len(Select(b.find_element(By.ID, "timeline-session")).options) > 1)
        Select(browser.find_element(By.ID, "timeline-session")).select_by_index(1)
        WebDriverWait(browser, 5).until(lambda b: re.search(r"cell \d+.* ×\d+", b.find_element(By.ID, "timeline-cells").text))
        WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline-events li div"))
        browser.find_element(By.ID, "timeline-close").click()
        no_errors(browser)
        # The roster: a CSV upload through the page reports each refused line.
        browser.find_element(By.CSS_SELECTOR, "#roster summary").click()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as upload:
            upload.write("email,name,team\nnew.student@example.com,New Student,team-9\nnot-an-email,X,team-9\n"
                         "student001@example.com,Student 1,team-1\n")
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(upload.name)
        browser.find_element(By.CSS_SELECTOR, "#upload button").click()
        WebDriverWait(browser, 5).until(lambda b: "1 enrolled, 1 already enrolled" in b.find_element(By.ID, "upload-report").text)
        assert "line 3 (not-an-email): not an email address" in browser.find_element(By.ID, "upload-report").text
        WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, '#students .card[data-email="new.student@example.com"]'))
        hold_and_accept(browser, server, token)
        cards = len(browser.find_elements(By.CSS_SELECTOR, "#students .card"))
        print(f"browser: class live view with {cards} simulated students; a help request appeared {shown:.2f} s after it was sent")
        assignment_workflow(browser, server, token, class_url, args)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)


def request_log_page(browser, server):
    """The admin finds the roster upload in the request log and opens its trace's steps."""
    browser.get(server.url + "/dashboard")
    browser.find_element(By.LINK_TEXT, "Logs").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/logs"))
    browser.find_element(By.NAME, "route").send_keys("/api/v1/classes/{id}/students/csv")
    browser.find_element(By.CSS_SELECTOR, "#filter button[type=submit]").click()
    # The table is redrawn when the filtered answer comes: rows read meanwhile may go stale.
    WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: (rows := b.find_elements(By.CSS_SELECTOR, "#requests tbody tr")) and all("/students/csv" in r.text for r in rows))
    csv_link = browser.find_element(By.ID, "requests-csv").get_attribute("href")
    assert "route=%2Fapi%2Fv1%2Fclasses%2F%7Bid%7D%2Fstudents%2Fcsv" in csv_link, csv_link
    browser.find_element(By.CSS_SELECTOR, "#requests tbody tr a").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "trace").is_displayed()
                                     and len(b.find_elements(By.CSS_SELECTOR, "#steps tbody tr")) == 4)
    steps = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#steps tbody tr")]
    assert "parse SUCCESS" in steps[1] and "enrol SUCCESS" in steps[3] and '"enrolled":1' in steps[3], steps
    assert "[redacted]" in browser.find_element(By.ID, "trace-requests").text  # the Cookie header
    no_errors(browser)
    print("browser: the admin's request log found the roster upload, and its trace showed the parse and enrol steps")


def stray_events(browser, server):
    """Events sent with a mistyped token wait on the classes page until assigned to a class there."""
    event = {"eventId": str(uuid.uuid4()), "eventType": "cell_executed", "emailAddress": "typo.student@example.com",
             "notebookPath": "week1/intro.ipynb", "cellIndex": 0}
    status, _ = server.request("POST", "/api/v1/events?token=pbc_typo-in-the-token", [event])
    assert status == 401, status
    browser.get(server.url + "/classes")
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "stray").is_displayed())
    row = browser.find_element(By.CSS_SELECTOR, "#stray-groups tbody tr")
    assert "pbc_typo-in-" in row.text and "typo.student@example.com" in row.text, row.text
    Select(row.find_element(By.TAG_NAME, "select")).select_by_visible_text("E2E class <i>1</i>")
    row.find_element(By.TAG_NAME, "button").click()
    report = browser.find_element(By.ID, "stray-report")
    WebDriverWait(browser, 10).until(lambda b: report.text, "no report after Assign")
    assert report.text == "1 event assigned to E2E class <i>1</i>.", report.text
    WebDriverWait(browser, 10).until(lambda b: not b.find_element(By.ID, "stray-groups").is_displayed())
    no_errors(browser)
    print("browser: an event sent with a mistyped token waited on the classes page and was assigned to the class there")


def hold_and_accept(browser, server, token):
    """The class holds students who join by sending events; a claimed email waits in the roster
    until the instructor accepts it there."""
    class_id = browser.current_url.rstrip("/").split("/")[-1]
    admin = server.login()
    browser.find_element(By.ID, "hold-new-students").click()
    WebDriverWait(browser, 5).until(
        lambda b: server.request("GET", f"/api/v1/classes/{class_id}", token=admin)[1].get("holdNewStudents") is True)
    email = "claimed-e2e@example.com"
    event = {"eventId": str(uuid.uuid4()), "eventType": "cell_executed", "emailAddress": email, "notebookPath": "week1/intro.ipynb",
             "cellIndex": 0}
    status, _ = server.request("POST", "/api/v1/events?token=" + token, [event])
    assert status == 200, status

    def roster_line(b):
        line = next((item for item in b.find_elements(By.CSS_SELECTOR, "#roster-list li") if email in item.text), None)
        if line is None:
            # Not applied yet: closing and opening the panel reloads the roster.
            summary = b.find_element(By.CSS_SELECTOR, "#roster summary")
            summary.click()
            summary.click()
            time.sleep(0.3)
        return line

    # The roster is re-rendered on each load, so an element found may be replaced meanwhile.
    patient = {"ignored_exceptions": [StaleElementReferenceException]}

    def accept_when_waiting(b):
        line = roster_line(b)
        if line is None or "waiting" not in line.text:
            return False
        line.find_element(By.XPATH, ".//button[text()='accept']").click()
        return True

    WebDriverWait(browser, 10, **patient).until(accept_when_waiting)
    WebDriverWait(browser, 5, **patient).until(lambda b: any(email in item.text and "waiting" not in item.text
                                                             for item in b.find_elements(By.CSS_SELECTOR, "#roster-list li")))
    status, roster = server.request("GET", f"/api/v1/classes/{class_id}/students", token=admin)
    member = next(m for m in roster["students"] if m["email"] == email)
    assert member["joinedByEvents"] and not member["held"], member
    browser.find_element(By.ID, "hold-new-students").click()
    print("browser: a student who joined by sending events waited in the roster until accepted there")


def assignment_workflow(browser, server, token, class_url, args):
    """The instructor creates an assignment on the simulated notebook and watches the class work on
    it; a student (second browser) hands in a notebook, is graded, and sees the grade live."""
    # Class settings: a colleague (an instructor account) becomes a co-instructor.
    admin = server.login()
    status, body = server.request("POST", "/api/v1/users", {"email": "colleague@example.com", "password": "colleague-password-1",
                                                            "role": "instructor"}, token=admin)
    assert status == 201, body
    colleague_id = body["id"]
    browser.find_element(By.CSS_SELECTOR, "#settings summary").click()
    add = browser.find_element(By.ID, "add-instructor")
    add.find_element(By.NAME, "email").send_keys("nobody@example.com")
    add.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(browser, 5).until(lambda b: "No user" in add.find_element(By.CSS_SELECTOR, '[data-error-for="email"]').text)
    no_errors(browser, expected="/instructors - Failed to load resource: the server responded with a status of 404")
    add.find_element(By.NAME, "email").clear()
    add.find_element(By.NAME, "email").send_keys("colleague@example.com")
    add.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(browser, 5).until(lambda b: "colleague@example.com" in b.find_element(By.ID, "instructor-list").text)

    browser.find_element(By.CSS_SELECTOR, "#assignments summary").click()
    form = browser.find_element(By.ID, "new-assignment")
    form.find_element(By.CSS_SELECTOR, "button").click()  # empty: the page says what is missing
    assert "title" in form.find_element(By.CSS_SELECTOR, '[data-error-for="title"]').text
    form.find_element(By.NAME, "title").send_keys("Week 1: <intro>")
    form.find_element(By.NAME, "notebookPath").send_keys("week1/intro.ipynb")
    browser.execute_script("arguments[0].value = arguments[1]", form.find_element(By.NAME, "dueAt"), "2099-06-30T17:00")
    form.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#assignment-list a"))
    link = browser.find_element(By.CSS_SELECTOR, "#assignment-list a")
    assert link.text == "Week 1: <intro>", link.text
    link.click()
    # Every simulated student is listed with how far their events say they got on the notebook.
    WebDriverWait(browser, 10).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#students tr")) >= 40)
    WebDriverWait(browser, 10).until(lambda b: any("different cell" in row.text for row in b.find_elements(By.CSS_SELECTOR, "#students tr")))

    status, body = server.request("POST", "/api/v1/users", {"email": "student001@example.com", "password": "student-password-1",
                                                            "role": "student"}, token=admin)
    assert status == 201, body
    student = new_browser()
    try:
        student.get(server.url + "/")
        student.find_element(By.ID, "email").send_keys("student001@example.com")
        student.find_element(By.ID, "password").send_keys("student-password-1")
        student.find_element(By.ID, "login-button").click()
        WebDriverWait(student, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#my-classes .card"))
        WebDriverWait(student, 10).until(lambda b: b.find_element(By.ID, "connection").get_attribute("data-state") == "live")
        # The page comes with an empty state for "Latest activity" (the simulated student001 may
        # already have replaced it with a live event here, so it is read from the page as served).
        served = urllib.request.Request(server.url + "/dashboard", headers={"Cookie": "pb_session=" + student.get_cookie("pb_session")["value"]})
        with urllib.request.urlopen(served) as page:
            assert "your cell runs appear here" in page.read().decode()
        # Their own cell runs appear live (sent here as the extension would: the simulated
        # student001 may be waiting for help just now).
        event = {"eventId": str(uuid.uuid4()), "eventType": "cell_executed", "emailAddress": "student001@example.com",
                 "notebookPath": "week1/intro.ipynb", "cellIndex": 3, "hasError": False}
        status, _ = server.request("POST", "/api/v1/events?token=" + token, [event], headers={"Origin": "http://localhost:8888"})
        assert status == 200, status
        WebDriverWait(student, 10).until(lambda b: "cell 4" in b.find_element(By.ID, "my-events").text)  # index 3, shown from 1
        row = '#my-assignments tr[data-assignment-id]'
        WebDriverWait(student, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, row))
        assert "Week 1: <intro>" in student.find_element(By.CSS_SELECTOR, row).text
        # A file that is not a notebook is refused in the page; the notebook is handed in.
        with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as wrong:
            wrong.write("not json")
        student.find_element(By.CSS_SELECTOR, row + " input[type=file]").send_keys(wrong.name)
        student.find_element(By.CSS_SELECTOR, row + " button").click()
        WebDriverWait(student, 5).until(lambda b: "not a Jupyter notebook" in b.find_element(By.CSS_SELECTOR, row + " .error").text)
        with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as notebook:
            notebook.write('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": "print(42)", '
                           '"metadata": {}, "outputs": [], "execution_count": 1}]}')
        student.find_element(By.CSS_SELECTOR, row + " input[type=file]").send_keys(notebook.name)
        student.find_element(By.CSS_SELECTOR, row + " button").click()
        WebDriverWait(student, 5).until(lambda b: "handed in (version 1" in b.find_element(By.CSS_SELECTOR, row).text)

        # The instructor's page shows the submission (from the class channel) and grades it inline.
        mine = '#students tr[data-email="student001@example.com"]'
        WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, mine).get_attribute("data-submitted") == "yes")
        graded_row = browser.find_element(By.CSS_SELECTOR, mine)
        assert "version 1" in graded_row.text, graded_row.text
        grade = graded_row.find_element(By.NAME, "grade")
        grade.send_keys("140")
        graded_row.find_element(By.CSS_SELECTOR, "button").click()
        assert "0 to 100" in graded_row.find_element(By.CSS_SELECTOR, ".error").text
        grade.clear()
        grade.send_keys("87")
        graded_row.find_element(By.NAME, "feedback").send_keys("Nice work")
        graded_row.find_element(By.CSS_SELECTOR, "button").click()
        saved = time.time()
        WebDriverWait(browser, 5).until(lambda b: b.find_element(By.CSS_SELECTOR, mine).get_attribute("data-graded") == "yes")
        if args.assignment_screenshot:
            browser.save_screenshot(args.assignment_screenshot)
        # The student sees it appear without reloading: the notice, then the grade in the table.
        WebDriverWait(student, 5).until(lambda b: "graded 87/100" in b.find_element(By.ID, "announcements").text)
        live = time.time() - saved
        WebDriverWait(student, 5).until(lambda b: "Grade 87/100" in b.find_element(By.CSS_SELECTOR, row).text)
        assert "Nice work" in student.find_element(By.CSS_SELECTOR, row).text
        if args.student_screenshot:
            student.save_screenshot(args.student_screenshot)

        status, _ = server.request("POST", "/api/v1/broadcast", {"message": "Break until <b>11:00</b>"}, token=admin)
        assert status == 202, status
        WebDriverWait(student, 5).until(lambda b: "Break until <b>11:00</b>" in b.find_element(By.ID, "announcements").text)
        no_errors(browser)
        no_errors(student)
        print(f"browser: assignment created and followed; a student handed in a notebook and saw the grade {live:.2f} s after it was saved;"
              " then an admin's announcement")
    finally:
        student.quit()
    co_instructor_removed(server, class_url, colleague_id)


def co_instructor_removed(server, class_url, colleague_id):
    """The co-instructor follows the class live; the owner removes them: the open page stops
    following the class at once and says why, without a reload."""
    colleague = new_browser()
    try:
        colleague.get(server.url + "/")
        colleague.find_element(By.ID, "email").send_keys("colleague@example.com")
        colleague.find_element(By.ID, "password").send_keys("colleague-password-1")
        colleague.find_element(By.ID, "login-button").click()
        # An instructor lands on their classes, not on host metrics.
        WebDriverWait(colleague, 10).until(lambda b: b.current_url.endswith("/classes"))
        colleague.get(class_url)
        WebDriverWait(colleague, 10).until(lambda b: b.find_element(By.ID, "connection").get_attribute("data-state") == "live")
        class_id = class_url.rstrip("/").split("/")[-1]
        status, body = server.request("DELETE", f"/api/v1/classes/{class_id}/instructors/{colleague_id}", token=server.login())
        assert status == 204, (status, body)
        removed = time.time()
        connection = colleague.find_element(By.ID, "connection")
        WebDriverWait(colleague, 5).until(lambda b: "no longer allowed" in connection.text)
        assert connection.get_attribute("data-state") == "offline", connection.get_attribute("data-state")
        no_errors(colleague)
        print(f"browser: a removed co-instructor's open class page stopped following the class {time.time() - removed:.2f} s after the removal")
    finally:
        colleague.quit()


if __name__ == "__main__":
    sys.exit(main())
