"""The web UI in a real browser: Debian's headless Chromium driven by Playwright (no `playwright install` needed).

Loads the page, types a prompt, presses Generate, waits for the five maps and the preview, moves the light, downloads
the zip and checks it, shows a bad-input message, and saves a screenshot to the test's tmp folder.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install_test_tools.sh adds it)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the `test` extra (playwright)")
pytest.importorskip("gradio", reason="the web UI needs the `app` extra (gradio)")

from stablematerials.studio import Limits, Studio  # noqa: E402
from studio_helpers import running_app, save_tiny_student_model  # noqa: E402

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    model = save_tiny_student_model(tmp_path_factory.mktemp("browser") / "tiny")
    with running_app(Studio(model, limits=Limits(max_resolution=64))) as address:
        yield address


@pytest.fixture
def page(url, tmp_path):
    outside: list[str] = []
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, accept_downloads=True,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", lambda r: outside.append(r.url) if _is_outside(r.url) else None)
        page.goto(url)
        yield page
        context.close()
    assert outside == [], f"the page contacted other hosts: {outside}"  # works fully offline


def _is_outside(address: str) -> bool:
    parsed = urlparse(address)
    return parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in ("127.0.0.1", "localhost")


def _image_sources(page, selector: str) -> list[str]:
    return page.locator(f"{selector} img").evaluate_all("els => els.map(e => e.src)")


def test_make_inspect_and_download_a_material(page, tmp_path):
    page.locator("#prompt textarea").fill("mossy cobblestone path")
    resolution = page.locator("#resolution input")
    resolution.fill("32")
    resolution.press("Enter")
    page.locator("#generate").click()

    # the five maps, the preview, the tiled view and the files
    page.wait_for_function("document.querySelectorAll('#maps img').length >= 5", timeout=TIMEOUT_MS)
    page.locator("#preview img").wait_for()
    page.locator("#tiled img").wait_for()
    page.locator("#zip a[download]").first.wait_for()
    captions = page.locator("#maps").inner_text()
    for label in ("Base color", "Normal", "Height", "Roughness", "Metallic"):
        assert label in captions
    assert "seed" in page.locator("#status").inner_text()
    assert "Seam score" in page.locator("#seam").inner_text()
    natural = page.locator("#preview img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [512, 256]

    # moving the light re-renders the preview without generating again
    before = _image_sources(page, "#preview")
    history_before = page.locator("#history img").count()
    azimuth = page.locator("#light-azimuth input[type=number]")
    azimuth.fill("300")
    azimuth.blur()  # the slider reports its final value on release (blur of its number box)
    page.wait_for_function(
        "before => { const i = document.querySelector('#preview img'); return i && i.src !== before; }",
        arg=before[0], timeout=TIMEOUT_MS,
    )  # fmt: skip
    assert page.locator("#history img").count() == history_before

    # the zip downloads and holds the material folder
    with page.expect_download() as download_info:
        page.locator("#zip a[download]").first.click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.suffix == ".zip"
    with zipfile.ZipFile(saved) as archive:
        files = {name.split("/", 1)[1] for name in archive.namelist()}
    assert files == {"basecolor.png", "normal.png", "height.png", "roughness.png", "metallic.png", "metadata.json"}

    # the 3D shape, the tiled map and the history re-show the material without generating again
    page.get_by_label("sphere").check()
    page.wait_for_function("document.querySelector('#glb').innerText.includes('_sphere')", timeout=TIMEOUT_MS)
    tiled_before = _image_sources(page, "#tiled")
    page.locator("#tiled-map input").fill("Normal")
    page.locator("#tiled-map input").press("Enter")
    page.wait_for_function(
        "before => { const i = document.querySelector('#tiled img'); return i && i.src !== before; }",
        arg=tiled_before[0], timeout=TIMEOUT_MS,
    )  # fmt: skip
    assert "**Normal**" not in page.locator("#seam").inner_text()  # rendered as bold, not as markup
    page.locator("#history img").first.click()
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Showing')", timeout=TIMEOUT_MS)
    assert page.locator("#history img").count() == history_before

    page.wait_for_timeout(1500)  # let the 3D view draw before the screenshot
    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_photo_to_material_in_the_photo_tab(page, tmp_path):
    from studio_helpers import write_photo

    photo = write_photo(tmp_path / "brick wall.png", size=48)
    page.get_by_role("tab", name="From a photo").click()
    page.locator("#photo input[type=file]").set_input_files(str(photo))
    page.locator("#photo img").first.wait_for()  # the upload shows
    page.locator("#capture").click()
    page.wait_for_function("document.querySelectorAll('#maps img').length >= 5", timeout=TIMEOUT_MS)
    page.wait_for_function("document.querySelector('#status').innerText.includes('brick wall.png')", timeout=TIMEOUT_MS)
    page.locator("#preview img").wait_for()
    page.locator("#tiled img").wait_for()
    page.locator("#zip a[download]").first.wait_for()
    assert "Seam score" in page.locator("#seam").inner_text()
    assert page.locator("#history img").count() == 1
    page.screenshot(path=str(tmp_path / "photo_tab.png"), full_page=True)


def test_text_and_picture_together(page, tmp_path):
    """"This picture, but blue": a text prompt, an uploaded picture and the picture's share from the slider."""
    from studio_helpers import write_photo

    photo = write_photo(tmp_path / "bark.png", size=48)
    page.locator("#prompt textarea").fill("blue")
    page.locator("#image-prompt input[type=file]").set_input_files(str(photo))
    page.locator("#image-prompt img").first.wait_for()  # the upload shows
    share = page.locator("#image-weight input[type=number]")
    share.fill("0.3")
    share.blur()
    resolution = page.locator("#resolution input")
    resolution.fill("32")
    resolution.press("Enter")
    page.locator("#generate").click()
    page.wait_for_function("document.querySelectorAll('#maps img').length >= 5", timeout=TIMEOUT_MS)
    page.wait_for_function("document.querySelector('#history').innerText.includes('x0.3 + blue')", timeout=TIMEOUT_MS)
    assert "<image:bark.png> x0.3 + blue" in page.locator("#history").inner_text()  # the history names the mix


def test_bad_input_shows_a_message(page):
    page.locator("#prompt textarea").fill("")
    page.locator("#generate").click()
    page.get_by_text("give a text prompt", exact=False).first.wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#maps img").count() == 0
