"""The gallery report: `report.html` beside every batch's manifest, `kling report` from shard
manifests, a Markdown summary, and a real headless browser that opens the page offline."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import run

SCRIPT_PROMPT = 'a fox <script>document.title="pwned"</script> & "friends"'
SCREENSHOT = os.environ.get("KLING_REPORT_SCREENSHOT")  # where to keep one, for the README


def write_items(path: Path, items: list[dict[str, object]]) -> Path:
    items = [{"provider": "runware", **item} for item in items]
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


@pytest.fixture
def mixed_batch(use_emulator: Emulator) -> Path:
    """A batch folder whose manifest has succeeded, failed and skipped items: `fox` is done by a
    first run, so the second skips it; `owl`'s task fails; `cat` has markup in its prompt."""
    fox = {"id": "fox", "prompt": "a red fox on a snowy ridge at dawn", "aspect_ratio": "16:9"}
    first = run("batch", str(write_items(Path("one.jsonl"), [fox])), "-o", "out")
    assert first.returncode == 0, first.stderr
    items = [
        fox,
        {"id": "owl", "prompt": "an owl under the moon", "aspect_ratio": "1:1"},
        {"id": "cat", "prompt": SCRIPT_PROMPT, "aspect_ratio": "9:16", "num_images": 2},
    ]
    use_emulator.inject("runware", Fault(kind="task_failure", message="policy violation"))
    second = run("batch", str(write_items(Path("all.jsonl"), items)), "-o", "out", "-j", "1")
    assert second.returncode == 8, second.stderr
    assert "Report: out/report.html" in second.stderr
    return Path("out")


def manifest_items(folder: Path) -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads((folder / "manifest.json").read_text())["items"]
    return items


def test_every_batch_writes_a_report_with_one_card_per_item(mixed_batch: Path) -> None:
    page = (mixed_batch / "report.html").read_text()
    statuses = {item["id"]: item["status"] for item in manifest_items(mixed_batch)}
    assert statuses == {"fox": "skipped", "owl": "failed", "cat": "succeeded"}
    assert page.count('<article class="card') == 3
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "policy violation" in page and "done" in page
    assert "http://" not in page and "https://" not in page  # nothing from the internet
    thumbs = sorted((mixed_batch / "thumbs").iterdir())
    assert len(thumbs) == 3  # fox's one image and cat's two
    made = [thumb.stat().st_mtime_ns for thumb in thumbs]
    again = run(
        "report", str(mixed_batch / "manifest.json"), "-o", str(mixed_batch / "report.html")
    )
    assert again.returncode == 0, again.stderr
    assert [thumb.stat().st_mtime_ns for thumb in thumbs] == made  # made once, then reused


def test_no_report_skips_it_and_summary_md_appends_markdown(use_emulator: Emulator) -> None:
    items = write_items(Path("m.jsonl"), [{"id": "bold", "prompt": "a <b>bold</b> fox"}])
    Path("summary.md").write_text("earlier step\n")
    done = run("batch", str(items), "-o", "out", "--no-report", "--summary-md", "summary.md")
    assert done.returncode == 0, done.stderr
    assert not Path("out/report.html").exists()
    summary = Path("summary.md").read_text()
    assert summary.startswith("earlier step\n")
    assert "**1** succeeded · **0** failed · **0** skipped · **1** images" in summary
    assert "| bold | succeeded | runware | 1:1 | 1 | $0.0280 |  |" in summary


def test_report_from_shard_manifests_makes_one_page(use_emulator: Emulator) -> None:
    items = write_items(
        Path("m.jsonl"), [{"id": f"item{n}", "prompt": f"fox {n}"} for n in range(4)]
    )
    for k in (1, 2):
        done = run("batch", str(items), "--shard", f"{k}/2", "-o", f"s{k}", "--no-report")
        assert done.returncode == 0, done.stderr
    built = run("report", "s1/manifest.json", "s2", "-o", "site/all.html", "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout) == {"schema_version": 1, "report": str(Path("site/all.html"))}
    page = Path("site/all.html").read_text()
    assert page.count('<article class="card') == 4
    assert 'href="../s1/' in page or 'href="../s2/' in page  # relative to the page


# -- a real browser ---------------------------------------------------------------------------


def _browser_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser() -> Iterator[object]:
    paths = _browser_paths()
    if paths is None:
        pytest.skip("no chromium and chromedriver on PATH (.ci/run installs Debian's)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(paths[1]))
    try:
        yield driver
    finally:
        driver.quit()


def test_a_browser_shows_the_report_offline(mixed_batch: Path, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver: object = browser
    report = (mixed_batch / "report.html").resolve()
    driver.get(report.as_uri())  # type: ignore[attr-defined]
    images = driver.find_elements(By.TAG_NAME, "img")  # type: ignore[attr-defined]
    assert len(images) == 3
    for image in images:
        loaded = driver.execute_script(  # type: ignore[attr-defined]
            "return arguments[0].complete && arguments[0].naturalWidth", image
        )
        assert loaded > 0, image.get_attribute("src")
    links = [a.get_attribute("href") for a in driver.find_elements(By.TAG_NAME, "a")]  # type: ignore[attr-defined]
    assert len(links) == 3
    for link in links:
        parts = urlsplit(link)
        assert parts.scheme == "file", link
        assert Path(unquote(parts.path)).is_file(), link
    items = manifest_items(mixed_batch)

    def total(name: str) -> str:
        return str(driver.find_element(By.ID, f"total-{name}").text)  # type: ignore[attr-defined]

    assert total("succeeded") == str(sum(item["status"] == "succeeded" for item in items))
    assert total("failed") == str(sum(item["status"] == "failed" for item in items))
    assert total("skipped") == str(sum(item["status"] == "skipped" for item in items))
    assert total("images") == str(sum(len(item["files"]) for item in items))  # type: ignore[arg-type]
    prompts = [p.text for p in driver.find_elements(By.CLASS_NAME, "prompt")]  # type: ignore[attr-defined]
    assert SCRIPT_PROMPT in prompts  # shown as text, never run
    assert driver.title == "kling batch report"  # type: ignore[attr-defined]
    if SCREENSHOT:
        driver.save_screenshot(SCREENSHOT)  # type: ignore[attr-defined]


def test_a_thumbnail_without_a_recorded_hash_is_still_made_once(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (600, 400), (30, 90, 200)).save(tmp_path / "hand.png")
    entry = {"id": "hand", "status": "succeeded", "files": [{"path": "hand.png"}]}
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "items": [entry]}))
    made = []
    for _ in range(2):  # separate processes: nothing may hang on a per-process hash seed
        built = run("report", str(tmp_path), "-o", str(tmp_path / "report.html"))
        assert built.returncode == 0, built.stderr
        made.append([(p.name, p.stat().st_mtime_ns) for p in (tmp_path / "thumbs").iterdir()])
    assert len(made[0]) == 1 and made[0] == made[1]
