"""What a sidecar stores: reference URLs without credentials, and whether the image is the
documented size for what was asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator
from kling_cli.sidecar import public_url


def sidecars(result_json: dict) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(Path(f["path"] + ".json").read_text()) for f in result_json["files"]]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://user:pw@cdn.example.com/a.png", "https://cdn.example.com/a.png"),
        (
            "https://bucket.s3.amazonaws.com/a.png?X-Amz-Algorithm=AWS4&X-Amz-Signature=ab12",
            "https://bucket.s3.amazonaws.com/a.png",
        ),
        (
            "https://acct.blob.core.windows.net/c/a.png?sv=2024&sig=zz",
            "https://acct.blob.core.windows.net/c/a.png",
        ),
        (
            "https://d1.cloudfront.net/a.png?Expires=1&Signature=x&Key-Pair-Id=K",
            "https://d1.cloudfront.net/a.png",
        ),
        ("https://example.com/a.png?token=secret", "https://example.com/a.png"),
        ("https://example.com/a.png?width=600&v=2", "https://example.com/a.png?width=600&v=2"),
        ("http://[::1]:8080/a.png?access_token=t", "http://[::1]:8080/a.png"),
        ("photos/hero.png", "photos/hero.png"),
    ],
)
def test_public_url(given: str, stored: str) -> None:
    assert public_url(given) == stored


def test_sidecars_store_reference_urls_without_credentials(run_cli, use_emulator: Emulator) -> None:
    signed = "https://me:hunter2@example.com/a.png?X-Goog-Signature=deadbeef&X-Goog-Expires=60"
    result = run_cli(
        "generate", "x @image_1", "-r", signed, "-p", "unifically", "-a", "1:1", "--json"
    )
    assert result.exit_code == 0, result.stderr
    [sidecar] = sidecars(result.json())  # type: ignore[arg-type]
    assert sidecar["parameters"]["references"] == ["https://example.com/a.png"]
    text = json.dumps(sidecar)
    assert "hunter2" not in text and "deadbeef" not in text


@pytest.mark.parametrize(("served", "mismatch"), [((1024, 1024), False), ((1000, 1000), True)])
def test_sidecar_says_when_the_image_is_not_the_documented_size(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, served, mismatch: bool
) -> None:
    from kling_cli.emulator import dimensions

    monkeypatch.setitem(dimensions.PIXELS, ("1k", "1:1"), served)
    result = run_cli("generate", "a fox", "-p", "unifically", "-a", "1:1", "--json")
    assert result.exit_code == 0, result.stderr
    [sidecar] = sidecars(result.json())  # type: ignore[arg-type]
    image = sidecar["image"]
    assert (image["width"], image["height"]) == served
    assert (image["expected_width"], image["expected_height"]) == (1024, 1024)
    assert image["size_mismatch"] is mismatch
