"""Tested as a person would: headless Chromium uploads an image to the assistant and reads the
result; it also opens VisualDL's scalar page after a training run. Screenshots are kept in
``test-artifacts/``. Skips (with the reason) when Chromium, chromedriver or selenium is missing."""

import csv
import json
import re
import runpy
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, make_tiny_dataset, tiny_config
from corner_model import corner_image, export_corner_model

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Debian's chromedriver: nothing is downloaded."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (requirements-test.txt)")
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.skip(f"{path} not found: install chromium and chromium-driver (.ci/system_deps.sh)")
    profile = tempfile.mkdtemp(prefix="paddle_dx_chromium_")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1200,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - any start-up failure is environmental here
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"headless Chromium could not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition, timeout=30, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The assistant on a free port in a thread; yields (base URL, export dir, work dir)."""
    from werkzeug.serving import make_server

    from paddle_dx.ui.server import build_assistant, create_app

    work = tmp_path_factory.mktemp("ui_browser")
    _, export_dir = export_corner_model(work)
    server = make_server("127.0.0.1", 0, create_app(build_assistant(export_dir)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", export_dir, work
    server.shutdown()


def infer_csv(export_dir, image, out_csv, monkeypatch):
    """Run tools/infer.py (in this process, as its command line would) and read its CSV."""
    monkeypatch.setattr(
        sys, "argv", ["infer.py", "--model-dir", str(export_dir), "--input", str(image), "--output", str(out_csv)]
    )
    runpy.run_path(str(ROOT / "tools" / "infer.py"), run_name="__main__")
    with open(out_csv, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_upload_in_browser_shows_what_infer_py_computes(browser, served, monkeypatch):
    from selenium.webdriver.common.by import By

    base, export_dir, work = served
    image = work / "patient_upload.png"
    cv2.imwrite(
        str(image), cv2.cvtColor(corner_image(1, np.random.default_rng(42), distractor=True), cv2.COLOR_RGB2BGR)
    )
    expected = infer_csv(export_dir, image, work / "infer.csv", monkeypatch)[0]

    browser.get(base + "/")
    assert "This is an aid, not a diagnosis." in browser.find_element(By.CSS_SELECTOR, ".disclaimer").text
    wait_for(lambda: "classes: plain, corner" in browser.find_element(By.ID, "model-info").text, what="model info")
    browser.find_element(By.ID, "file-input").send_keys(str(image))
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-done"), what="the result")

    card = browser.find_element(By.CSS_SELECTOR, "#results .result")
    assert card.find_element(By.CSS_SELECTOR, ".class-name").text == expected["predicted_class"]
    rows = card.find_elements(By.CSS_SELECTOR, "tr.prob")
    assert [r.get_attribute("data-class-name") for r in rows] == ["plain", "corner"]  # every class, a bar each
    for row in rows:
        name = row.get_attribute("data-class-name")
        want = float(expected[name])
        assert float(row.get_attribute("data-prob")) == pytest.approx(want, abs=1e-6), name
        assert row.find_element(By.CSS_SELECTOR, ".value").text == f"{100 * want:.1f} %"
        width, cell = browser.execute_script(
            "const b = arguments[0], c = b.parentElement, s = getComputedStyle(c);"
            "return [b.getBoundingClientRect().width,"
            "        c.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight)];",
            row.find_element(By.CSS_SELECTOR, ".bar"),
        )
        assert width == pytest.approx(max(want * cell, 1), abs=1.5), (name, width, cell)
    assert card.find_element(By.CSS_SELECTOR, ".sentence").text.endswith("This is an aid, not a diagnosis.")

    # the Grad-CAM toggle swaps the picture for the heat-map overlay
    gradcam = card.find_element(By.CSS_SELECTOR, "img.gradcam")
    assert not gradcam.is_displayed()
    card.find_element(By.CSS_SELECTOR, ".gradcam-toggle").click()
    assert gradcam.is_displayed() and not card.find_element(By.CSS_SELECTOR, "img.preview").is_displayed()
    assert browser.execute_script("return arguments[0].naturalWidth", gradcam) == 64

    speak = card.find_element(By.CSS_SELECTOR, "button.speak")
    if shutil.which("espeak-ng") or shutil.which("espeak"):
        speak.click()
        wait_for(lambda: speak.get_attribute("data-spoken") == "1", what="the spoken result")
        assert "failed" not in browser.find_element(By.ID, "status").text.lower()
    else:
        assert not speak.is_enabled()
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui_result.png"))


def test_visualdl_scalar_page_shows_the_runs_loss_curve(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from paddle_dx.engine.trainer import Trainer

    visualdl = shutil.which("visualdl")
    if visualdl is None:
        pytest.skip("the visualdl command is not on PATH")
    images, lists = make_tiny_dataset(tmp_path / "data")
    Trainer(tiny_config(images, lists, tmp_path / "out", **{"Global.use_visualdl": True})).fit()
    history = json.loads((tmp_path / "out" / "metrics.json").read_text())["history"]
    logdir, port = tmp_path / "out" / "vdl", free_port()
    log = open(tmp_path / "visualdl.log", "w")
    proc = subprocess.Popen(
        [visualdl, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port), "--disable-telemetry"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/app"
    try:

        def alive():
            try:
                return urllib.request.urlopen(base + "/api/runs", timeout=2).status == 200
            except OSError:
                return proc.poll() is not None  # stop waiting if it died

        wait_for(alive, 30, "VisualDL to start")
        assert proc.poll() is None, (tmp_path / "visualdl.log").read_text()[-2000:]
        browser.get(base + "/scalar")
        # chart titles are drawn on ECharts canvases, so check what the page did: it fetched a scalar
        # series of this run (the first group it opens: test/, train/ or val/) and drew the charts
        fetched = wait_for(
            lambda: [
                u
                for u in browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
                if "scalar" in u and "tag=" in u
            ],
            30,
            "the scalar page to fetch a series",
        )
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".echarts canvas"), 30, "charts to render")
        groups = browser.find_element(By.TAG_NAME, "body").text.split()
        assert {"train", "val", "test"} <= set(groups), groups[:40]
        # the page's own query, asked for the training loss: the run's per-epoch values
        train_loss = re.sub(r"tag=[^&]*", "tag=" + urllib.parse.quote("train/loss", safe=""), fetched[0])
        series = json.loads(urllib.request.urlopen(train_loss, timeout=5).read())["data"]
        assert [round(point[2], 5) for point in series] == [round(h["train_loss"], 5) for h in history]
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "visualdl_scalars.png"))
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
