"""The PCam paper speaks each diagnosis with advice: the page's "speak each result as soon as it
appears" option speaks every result in turn, with a next-step sentence worded as an aid and the
disclaimer last (headless Chromium; skipped without it)."""

import shutil

import cv2
import numpy as np
import pytest
from corner_model import corner_image
from test_ui_browser import browser, served, wait_for  # noqa: F401 - pytest fixtures

from paddle_dx.ui.speech import DISCLAIMER, NEXT_STEPS, next_step, sentence


def test_the_next_step_is_worded_as_an_aid_and_the_disclaimer_stays_last():
    assert next_step("lung_aca") == NEXT_STEPS["finding"] and next_step("lung_n") == NEXT_STEPS["normal"]
    said = sentence("tumor", 0.91, advice=True)
    assert said == f"Tumor suspected, probability 91 percent. {NEXT_STEPS['finding']}. {DISCLAIMER}"
    assert sentence("no_tumor", 0.8, advice=True).endswith(f"{NEXT_STEPS['normal']}. {DISCLAIMER}")
    assert sentence("tumor", 0.91) == f"Tumor suspected, probability 91 percent. {DISCLAIMER}"
    for step in NEXT_STEPS.values():  # an aid: no orders, no certainty
        assert not any(word in step.lower().split() for word in ("must", "should", "diagnosed", "treat"))


def test_speak_on_appear_speaks_every_result_in_turn_with_its_next_step(browser, served, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    if not (shutil.which("espeak-ng") or shutil.which("espeak")):
        pytest.skip("espeak-ng is not installed (.ci/system_deps.sh installs it)")
    base, _, _ = served
    files = []
    for i in range(2):
        path = tmp_path / f"upload_{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(corner_image(i, np.random.default_rng(i)), cv2.COLOR_RGB2BGR))
        files.append(str(path))
    browser.get(base + "/")
    option = wait_for(
        lambda: (lambda box: box if box.is_enabled() else None)(browser.find_element(By.ID, "speak-on-appear")),
        what="speech available",
    )
    if not option.is_selected():
        option.click()
    browser.find_element(By.ID, "file-input").send_keys("\n".join(files))
    wait_for(
        lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-spoken-all"),
        timeout=60,
        what="every result spoken",
    )
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .result")
    assert len(cards) == 2
    for card in cards:
        button = card.find_element(By.CSS_SELECTOR, "button.speak")
        assert button.get_attribute("data-spoken") == "1"  # spoken without a click
        said = button.get_attribute("data-spoken-text")
        shown = card.find_element(By.CSS_SELECTOR, ".sentence").text
        name = card.find_element(By.CSS_SELECTOR, ".class-name").text
        assert said.startswith(shown.removesuffix(DISCLAIMER)) and said.endswith(f"{next_step(name)}. {DISCLAIMER}")
    assert "failed" not in browser.find_element(By.ID, "status").text.lower()
    browser.refresh()  # the choice is remembered
    assert wait_for(lambda: browser.find_element(By.ID, "speak-on-appear").is_selected(), what="remembered option")
