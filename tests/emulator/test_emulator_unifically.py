"""Unifically as documented: the Kling O1 Image page (https://unifically.com/models/kling-o1-image)
and the API docs (https://docs.unifically.com/api-reference/v1-tasks)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from kling_cli.emulator import Fault

from .helpers import LATENCY, wait_until

MODEL = "kuaishou/kling-o1-image"
INVALID_API_KEY = {
    "code": 401,
    "data": {"message": "Invalid API key provided", "code": "authentication_failed"},
}
SIZES = {
    ("auto", "1k"): (1024, 1024), ("1:1", "1k"): (1024, 1024), ("16:9", "1k"): (1360, 768),
    ("9:16", "1k"): (768, 1360), ("4:3", "1k"): (1168, 880), ("3:4", "1k"): (880, 1168),
    ("3:2", "1k"): (1248, 832), ("2:3", "1k"): (832, 1248), ("21:9", "1k"): (1552, 656),
    ("auto", "2k"): (2048, 2048), ("1:1", "2k"): (2048, 2048), ("16:9", "2k"): (2720, 1536),
    ("9:16", "2k"): (1536, 2720), ("4:3", "2k"): (2336, 1760), ("3:4", "2k"): (1760, 2336),
    ("3:2", "2k"): (2496, 1664), ("2:3", "2k"): (1664, 2496), ("21:9", "2k"): (3104, 1312),
}  # fmt: skip


def test_seed_curl_example_is_accepted_and_completes_with_a_png(
    emu: Any, unifically: Any, fetch_image: Any
) -> None:
    emu.latency = 0.6  # pending for the first 0.2 s: room for the first poll, even under load
    submitted = unifically.submit_input(
        prompt="A serene mountain landscape at sunset, photorealistic",
        aspect_ratio="16:9",
        resolution="2k",
    )
    assert submitted.status_code == 200
    body = submitted.json()
    assert body["code"] == 200 and body["success"] is True
    assert body["data"]["status"] == "pending"
    task_id = body["data"]["task_id"]

    first = unifically.poll(task_id)
    assert first.status_code == 200
    assert first.json() == {
        "code": 200,
        "data": {"task_id": task_id, "status": "pending", "output": {}, "error": {}},
    }
    wait_until(lambda: unifically.poll(task_id).json()["data"]["status"] == "processing")
    done = unifically.wait_for_task(task_id)
    assert done["status"] == "completed"
    assert done["error"] == {}
    url = done["output"]["image_url"]
    assert url.startswith(emu.image_origin + "/") and url.endswith(".png")

    download, image = fetch_image(url)
    assert (image.format, image.size) == ("PNG", (2720, 1536))
    assert download.headers["content-type"] == "image/png"
    assert int(download.headers["content-length"]) == len(download.content)


def test_every_aspect_ratio_and_resolution_gives_its_documented_size(
    unifically: Any, fetch_image: Any
) -> None:
    task_ids = {
        key: unifically.submit_input(
            prompt="a lighthouse", aspect_ratio=key[0], resolution=key[1]
        ).json()["data"]["task_id"]
        for key in SIZES
    }
    for key, task_id in task_ids.items():
        done = unifically.wait_for_task(task_id)
        _, image = fetch_image(done["output"]["image_url"])
        assert (image.format, image.size) == ("PNG", SIZES[key]), key


def test_defaults_are_auto_and_1k(unifically: Any, fetch_image: Any) -> None:
    task_id = unifically.submit_input(prompt="a lighthouse").json()["data"]["task_id"]
    done = unifically.wait_for_task(task_id)
    _, image = fetch_image(done["output"]["image_url"])
    assert image.size == (1024, 1024)


def test_reference_urls_are_accepted(unifically: Any) -> None:
    urls = [f"https://example.com/ref{index}.png" for index in range(10)]
    response = unifically.submit_input(prompt="use @image_1 and @image_10", image_urls=urls)
    assert response.status_code == 200


def test_callback_url_and_dry_run(emu: Any, unifically: Any) -> None:
    body = {
        "model": "kuaishou/kling-o1-image",
        "input": {"prompt": "a lighthouse"},
        "callback_url": "https://example.com/callback",
    }
    assert unifically.submit(body).status_code == 200
    dry = unifically.submit({**body, "dry_run": True})
    assert dry.status_code == 200
    assert len(emu.events) == 1  # the dry run created no task


def test_status_timeline_follows_the_latency(emu: Any, unifically: Any) -> None:
    task_id = unifically.submit_input(prompt="a lighthouse").json()["data"]["task_id"]
    unifically.wait_for_task(task_id)
    (created, *_), (completed, name, provider, event_task) = emu.events
    assert (name, provider, event_task) == ("completed", "unifically", task_id)
    assert completed - created == pytest.approx(LATENCY)


def test_a_failed_task_reports_generation_failed(emu: Any, unifically: Any) -> None:
    emu.inject("unifically", Fault("task_failure", message="[Content policy violation] no"))
    task_id = unifically.submit_input(prompt="a lighthouse").json()["data"]["task_id"]
    done = unifically.wait_for_task(task_id)
    assert done == {
        "task_id": task_id,
        "status": "failed",
        "output": {},
        "error": {"message": "[Content policy violation] no", "code": "generation_failed"},
    }
    assert emu.events[-1][1] == "failed"


def test_an_unknown_task_is_404_in_the_error_envelope(unifically: Any) -> None:
    response = unifically.poll("does-not-exist")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == 404
    assert body["data"]["code"] == "task_not_found"
    assert isinstance(body["data"]["message"], str)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic emulator-key"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_a_bad_key_gets_the_documented_401(unifically: Any, headers: dict[str, str]) -> None:
    submit = unifically.submit(
        {"model": "kuaishou/kling-o1-image", "input": {"prompt": "x"}}, headers
    )
    assert submit.status_code == 401
    assert submit.json() == INVALID_API_KEY
    poll = unifically.poll("some-task", headers=headers)
    assert poll.status_code == 401
    assert poll.json() == INVALID_API_KEY


URL = "https://example.com/a.png"
DATA_URI = "data:image/png;base64,AAAA"
INVALID_BODIES: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], "JSON object"),
    ("model missing", {"input": {"prompt": "x"}}, "Missing required parameter: model"),
    ("model wrong", {"model": "kuaishou/kling-v2", "input": {"prompt": "x"}}, "model"),
    ("input missing", {"model": MODEL}, "Missing required parameter: input"),
    ("prompt missing", {"model": MODEL, "input": {}}, "Missing required parameter: prompt"),
    ("prompt empty", {"model": MODEL, "input": {"prompt": ""}}, "prompt"),
    ("prompt long", {"model": MODEL, "input": {"prompt": "a" * 2501}}, "prompt"),
    ("aspect ratio", {"model": MODEL, "input": {"prompt": "x", "aspect_ratio": "5:4"}},
     "aspect_ratio"),
    ("resolution", {"model": MODEL, "input": {"prompt": "x", "resolution": "4k"}}, "resolution"),
    ("resolution upper case", {"model": MODEL, "input": {"prompt": "x", "resolution": "2K"}},
     "resolution"),
    ("eleven urls", {"model": MODEL, "input": {"prompt": "x", "image_urls": [URL] * 11}},
     "image_urls"),
    ("non-http url", {"model": MODEL, "input": {"prompt": "x", "image_urls": ["ftp://e.com/a"]}},
     "image_urls"),
    ("data uri", {"model": MODEL, "input": {"prompt": "x", "image_urls": [DATA_URI]}},
     "image_urls"),
    ("unknown input field", {"model": MODEL, "input": {"prompt": "x", "num_images": 2}},
     "num_images"),
    ("unknown top-level field", {"model": MODEL, "input": {"prompt": "x"}, "webhook": "x"},
     "webhook"),
    ("bad callback", {"model": MODEL, "input": {"prompt": "x"}, "callback_url": "nope"},
     "callback_url"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "mentions"),
    [case[1:] for case in INVALID_BODIES],
    ids=[case[0] for case in INVALID_BODIES],
)
def test_invalid_submission_is_a_422_validation_error(
    emu: Any, unifically: Any, body: Any, mentions: str
) -> None:
    response = unifically.submit(body)
    assert response.status_code == 422
    envelope = response.json()
    assert envelope["code"] == 422
    assert envelope["data"]["code"] == "validation_error"
    assert mentions in envelope["data"]["message"]
    assert emu.events == []


def test_the_documented_missing_prompt_message_is_verbatim(unifically: Any) -> None:
    response = unifically.submit({"model": MODEL, "input": {"aspect_ratio": "1:1"}})
    assert response.json() == {
        "code": 422,
        "data": {"message": "Missing required parameter: prompt", "code": "validation_error"},
    }


def test_unknown_routes_are_404(unifically: Any) -> None:
    response = unifically.http.get(
        f"{unifically.url}/v1/models", headers={"Authorization": "Bearer emulator-key"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_each_task_gets_its_own_id(unifically: Any) -> None:
    ids = [
        unifically.submit_input(prompt="a lighthouse").json()["data"]["task_id"] for _ in range(5)
    ]
    assert len(set(ids)) == 5
    assert all(a != b for a, b in itertools.combinations(ids, 2))
