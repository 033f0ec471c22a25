#!/usr/bin/env python3
"""The chat page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Python selenium) opens the page of a running `lamina serve`
(argv[1], e.g. http://127.0.0.1:8080), sends a message, waits for the streamed answer,
checks the tokens/s line, then asks a follow-up in the same conversation.

    apt-get install -y chromium chromium-driver && pip install selenium
    lamina serve --port 8080 &
    python3 scripts/test_chat_page.py http://127.0.0.1:8080

cli/tests/serve (the_chat_page_streams_an_answer_in_chromium) runs it when those are
installed."""

import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base = sys.argv[1]
opts = webdriver.ChromeOptions()
opts.binary_location = shutil.which("chromium")
profile = tempfile.mkdtemp(prefix="lamina-chromium-")
# Flags that work on these machines: no sandbox as root, no GPU, no network beyond loopback.
for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}"]:
    opts.add_argument(flag)
driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
try:
    driver.get(base + "/")
    wait = WebDriverWait(driver, 120)
    wait.until(lambda d: d.find_element(By.ID, "model").text not in ("", "…"))
    for field, value in [("temperature", "0"), ("max_tokens", "32"), ("system", "Answer in one sentence.")]:
        driver.find_element(By.ID, field).clear()
        driver.find_element(By.ID, field).send_keys(value)

    def ask(text, n):
        box = driver.find_element(By.ID, "input")
        box.send_keys(text)
        driver.find_element(By.ID, "send").click()
        wait.until(lambda d: d.find_element(By.ID, f"answer-{n}").get_attribute("data-done") == "1"
                   or "error" in d.find_element(By.ID, f"answer-{n}").get_attribute("class"))
        el = driver.find_element(By.ID, f"answer-{n}")
        assert "error" not in el.get_attribute("class"), el.text
        return el.find_element(By.CLASS_NAME, "text").text

    first = ask("What is the capital of France?", 1)
    assert "Paris" in first, first
    stats = driver.find_element(By.ID, "stats").text
    assert "tokens/s" in stats, stats
    second = ask("And of Italy?", 3)
    assert second.strip(), "empty follow-up answer"
    bubbles = driver.find_elements(By.CSS_SELECTOR, "#log .msg")
    assert len(bubbles) == 4, f"{len(bubbles)} messages on the page"
    print(f"ok: the page streamed {first!r}, then {second!r}; {stats}")
finally:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
