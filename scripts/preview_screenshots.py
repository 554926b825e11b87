"""Drive `drivesim preview` in headless Chromium like a user and time it: the first preview frame, the
key-frame clip and the full render of a 2-second scene, then "Add to catalog"; screenshots of the
page into --out (preview_keyframes.png, preview_progress.png, preview_catalog.png).

    python scripts/preview_screenshots.py --out docs/            # screenshots + timings (JSON)

Needs gradio, selenium and Debian's chromium + chromedriver (`make test` installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from drivesim.preview.app import launch
from drivesim.preview.runs import Previewer


def browser(width: int, height: int) -> webdriver.Chrome:
    """Headless Debian chromium through its chromedriver (no browser download)."""
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("DRIVESIM_CHROMIUM") or shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    driver = os.environ.get("DRIVESIM_CHROMEDRIVER") or shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(driver), options=options)


def run(out: Path, resolution: str, seconds: float, width: int, height: int) -> dict:
    """The user's path through the page -> timings (s); screenshots into `out`."""
    work = Path(tempfile.mkdtemp(prefix="preview-shots-"))
    previewer = Previewer(catalog=work / "catalog", work_dir=work / "runs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(previewer, "127.0.0.1", port, block=False)
    driver = browser(width, height)
    wait = lambda t: WebDriverWait(driver, t, poll_frequency=0.1)
    status = lambda: driver.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value")
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#layout img"))
        for elem_id, text in (
            ("time-of-day", "night"),
            ("crowdedness", "crowded"),
            ("motion", "lane change right"),
        ):
            driver.find_element(By.XPATH, f"//*[@id='{elem_id}']//label[normalize-space(.)='{text}']").click()
        time.sleep(1)
        img = driver.find_element(By.CSS_SELECTOR, "#layout img")
        w, h = img.size["width"], img.size["height"]
        for fx, fy in ((0.40, 0.55), (0.50, 0.75)):  # two corners of a box in the ego lane
            ActionChains(driver).move_to_element_with_offset(
                img, round((fx - 0.5) * w), round((fy - 0.5) * h)
            ).click().perform()
            time.sleep(1.0)
        field = driver.find_element(By.CSS_SELECTOR, "#duration input")
        field.clear()
        field.send_keys(str(seconds))
        if resolution != "128x256":
            box = driver.find_element(By.CSS_SELECTOR, "#resolution input")
            box.clear()
            box.send_keys(resolution + "\n")
        time.sleep(1)
        timings = {}
        start = time.perf_counter()
        driver.find_element(By.ID, "preview-keyframes").click()
        wait(300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#first-frame img"))
        timings["first_frame_s"] = time.perf_counter() - start
        wait(600).until(lambda d: "key-frame preview" in status() or "Error" in status())
        timings["keyframes_s"] = time.perf_counter() - start
        timings["keyframes_message"] = status()
        time.sleep(2)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(out / "preview_keyframes.png"))
        start = time.perf_counter()
        driver.find_element(By.ID, "render-full").click()
        wait(60).until(lambda d: "segment" in d.page_source)
        time.sleep(1)
        driver.save_screenshot(str(out / "preview_progress.png"))
        wait(3600).until(lambda d: "full render" in status() or "Error" in status())
        timings["full_render_s"] = time.perf_counter() - start
        timings["full_message"] = status()
        driver.find_element(By.ID, "add-to-catalog").click()  # the same scene: commits the render shown
        wait(300).until(lambda d: "added clip" in status() or "Error" in status())
        timings["add_message"] = status()
        driver.set_window_size(width, round(height * 1.45))
        time.sleep(3)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(out / "preview_catalog.png"))
        return timings
    finally:
        driver.quit()
        demo.close()
        previewer.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("artifacts/preview"), help="folder for the PNGs")
    parser.add_argument("--resolution", default="128x256", help="output resolution of the full render")
    parser.add_argument("--seconds", type=float, default=2.0, help="scene duration")
    parser.add_argument("--size", default="1400x1000", help="browser window, WIDTHxHEIGHT")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))
    print(json.dumps(run(args.out, args.resolution, args.seconds, width, height), indent=2))


if __name__ == "__main__":
    main()
