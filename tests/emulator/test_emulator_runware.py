"""Runware as documented: the model page (https://runware.ai/docs/models/klingai-image-o1) and
the platform docs (https://runware.ai/docs/platform/...)."""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Fault

from .helpers import LATENCY, RUNWARE_EXAMPLE, decode_image

UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
INVALID_API_KEY = {
    "errors": [
        {
            "code": "invalidApiKey",
            "message": "Invalid API key. Get one at https://my.runware.ai/signup",
            "parameter": "apiKey",
            "taskType": "authentication",
        }
    ]
}
DIMENSION_TABLE = [
    (1024, 1024), (1248, 832), (832, 1248), (1168, 880), (880, 1168), (768, 1360),
    (1360, 768), (1552, 656), (2048, 2048), (2496, 1664), (1664, 2496), (2336, 1760),
    (1760, 2336), (1536, 2720), (2720, 1536), (3104, 1312),
]  # fmt: skip


def test_seed_example_is_answered_synchronously_with_a_1360x768_jpeg(
    emu: Any, runware: Any, fetch_image: Any
) -> None:
    task = runware.task()
    started = time.monotonic()
    response = runware.post([task])
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= LATENCY * 0.9  # sync is the documented default: it waits for the result
    [item] = response.json()["data"]
    assert set(item) == {"taskType", "taskUUID", "imageUUID", "imageURL", "seed"}
    assert item["taskType"] == "imageInference"
    assert item["taskUUID"] == task["taskUUID"]
    assert UUID_V4.match(item["imageUUID"])
    assert isinstance(item["seed"], int)
    assert item["imageURL"].startswith(emu.image_origin + "/")
    assert item["imageURL"].endswith(".jpg")  # outputFormat defaults to JPG

    download, image = fetch_image(item["imageURL"])
    assert (image.format, image.size) == ("JPEG", (1360, 768))
    assert download.headers["content-type"] == "image/jpeg"
    assert int(download.headers["content-length"]) == len(download.content)


@pytest.mark.parametrize(("output_format", "suffix", "pil_format"), [
    ("PNG", ".png", "PNG"), ("WEBP", ".webp", "WEBP"), ("JPG", ".jpg", "JPEG"),
])  # fmt: skip
def test_output_format_sets_file_type_and_extension(
    runware: Any, fetch_image: Any, output_format: str, suffix: str, pil_format: str
) -> None:
    response = runware.post([runware.task(outputFormat=output_format, width=832, height=1248)])
    [item] = response.json()["data"]
    assert item["imageURL"].endswith(suffix)
    download, image = fetch_image(item["imageURL"])
    assert (image.format, image.size) == (pil_format, (832, 1248))
    assert download.headers["content-type"] == f"image/{pil_format.lower()}"


def test_number_results_gives_one_item_per_image_with_different_seeds(runware: Any) -> None:
    response = runware.post([runware.task(numberResults=3)])
    items = response.json()["data"]
    assert len(items) == 3
    assert len({item["imageUUID"] for item in items}) == 3
    assert len({item["seed"] for item in items}) == 3


def test_include_cost_adds_the_per_image_price(runware: Any) -> None:
    items = runware.post([runware.task(includeCost=True, numberResults=2)]).json()["data"]
    assert [item["cost"] for item in items] == [0.028, 0.028]


def test_async_acknowledges_at_once_then_get_response_reports_progress_and_results(
    emu: Any, runware: Any, fetch_image: Any
) -> None:
    # Room for the acknowledgement and the first poll to land while the task runs, also when
    # parallel workers share the cores (the ack alone took 1.5 s at a load of 18 on 2 cores).
    emu.latency = 4.0
    task = runware.task(deliveryMethod="async", outputFormat="PNG", numberResults=2)
    started = time.monotonic()
    ack = runware.post([task])
    assert time.monotonic() - started < emu.latency
    assert ack.json() == {"data": [{"taskType": "imageInference", "taskUUID": task["taskUUID"]}]}

    [running] = runware.get_response(task["taskUUID"]).json()["data"]
    assert running["status"] == "processing"
    assert running["taskUUID"] == task["taskUUID"]

    items = runware.wait_for_results(task["taskUUID"])
    assert [item["status"] for item in items] == ["success", "success"]
    assert all("cost" not in item for item in items)
    # Cumulative: asking again returns the same items.
    assert runware.get_response(task["taskUUID"]).json()["data"] == items
    _, image = fetch_image(items[0]["imageURL"])
    assert (image.format, image.size) == ("PNG", (1360, 768))


def test_get_response_items_carry_cost_when_asked(runware: Any) -> None:
    task = runware.task(deliveryMethod="async", includeCost=True)
    runware.post([task])
    [item] = runware.wait_for_results(task["taskUUID"])
    assert item["cost"] == 0.028


def test_get_response_for_an_unknown_task_is_a_not_found_error(runware: Any) -> None:
    task_uuid = str(uuid.uuid4())
    response = runware.get_response(task_uuid)
    assert response.status_code == 404
    [error] = response.json()["errors"]
    assert error["code"] == "taskFailedOrNotFound"
    assert error["taskUUID"] == task_uuid
    assert error["taskType"] == "getResponse"


def test_get_task_details_returns_the_request_and_the_response(runware: Any) -> None:
    task = runware.task(includeCost=True)
    results = runware.post([task]).json()["data"]
    response = runware.post([{"taskType": "getTaskDetails", "taskUUID": task["taskUUID"]}])
    [details] = response.json()["data"]
    assert details["taskType"] == "getTaskDetails"
    assert details["taskUUID"] == task["taskUUID"]
    assert details["request"] == [task]
    assert details["response"] == {"data": results}


@pytest.mark.parametrize("output_type", ["base64Data", "dataURI"])
def test_inline_output_types_carry_the_image_bytes(runware: Any, output_type: str) -> None:
    [item] = runware.post([runware.task(outputType=output_type)]).json()["data"]
    assert "imageURL" not in item
    if output_type == "base64Data":
        content = base64.b64decode(item["imageBase64Data"])
    else:
        prefix, _, encoded = item["imageDataURI"].partition(",")
        assert prefix == "data:image/jpeg;base64"
        content = base64.b64decode(encoded)
    assert decode_image(content).size == (1360, 768)


@pytest.mark.parametrize("resolution", [None, "1k", "1K", "2k", "2K"])
def test_references_without_dimensions_use_the_tier_square_size(
    runware: Any, fetch_image: Any, resolution: str | None
) -> None:
    task = runware.task(
        width=None,
        height=None,
        resolution=resolution,
        inputs={"referenceImages": ["https://example.com/ref.jpg"]},
    )
    [item] = runware.post([task]).json()["data"]
    _, image = fetch_image(item["imageURL"])
    expected = 2048 if resolution in ("2k", "2K") else 1024
    assert image.size == (expected, expected)


def test_every_size_in_the_dimension_table_is_accepted(runware: Any) -> None:
    tasks = [runware.task(width=w, height=h, deliveryMethod="async") for w, h in DIMENSION_TABLE]
    response = runware.post(tasks)
    assert response.status_code == 200
    assert len(response.json()["data"]) == len(DIMENSION_TABLE)


def test_a_failed_sync_task_answers_with_the_errors_envelope(emu: Any, runware: Any) -> None:
    emu.inject("runware", Fault("task_failure", message="blocked"))
    task = runware.task()
    response = runware.post([task])
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error == {
        "code": "providerContentPolicyViolation",
        "message": "blocked",
        "taskType": "imageInference",
        "taskUUID": task["taskUUID"],
    }


# -- authentication (authentication and errors docs) ------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": EMULATOR_API_KEY}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_a_bad_key_gets_the_documented_401(runware: Any, headers: dict[str, str]) -> None:
    response = runware.post([runware.task()], headers=headers)
    assert response.status_code == 401
    assert response.json() == INVALID_API_KEY


def test_an_authentication_task_first_in_the_array_is_accepted(runware: Any) -> None:
    auth_task = {"taskType": "authentication", "apiKey": EMULATOR_API_KEY}
    response = runware.post([auth_task, runware.task()], headers={})
    assert response.status_code == 200
    assert len(response.json()["data"]) == 1


def test_a_wrong_key_in_the_authentication_task_is_rejected(runware: Any) -> None:
    auth_task = {"taskType": "authentication", "apiKey": "wrong-key"}
    response = runware.post([auth_task, runware.task()], headers={})
    assert response.status_code == 401
    assert response.json() == INVALID_API_KEY


# -- validation (model page "Compatibility & Validation" and parameter list) ----------------

REF = {"referenceImages": ["https://example.com/ref.jpg"]}
INVALID_TASKS: list[tuple[str, dict[str, Any], str, Any]] = [
    ("taskUUID missing", {"taskUUID": None}, "missingTaskUUID", "taskUUID"),
    ("taskUUID not a uuid", {"taskUUID": "task-1"}, "invalidTaskUUID", "taskUUID"),
    ("taskUUID v1", {"taskUUID": str(uuid.uuid1())}, "invalidTaskUUID", "taskUUID"),
    ("model missing", {"model": None}, "missingModel", "model"),
    ("model wrong", {"model": "runware:100@1"}, "invalidModel", "model"),
    ("prompt missing", {"positivePrompt": None}, "missingPositivePrompt", "positivePrompt"),
    ("prompt short", {"positivePrompt": "ab"}, "invalidPositivePrompt", "positivePrompt"),
    ("prompt long", {"positivePrompt": "a" * 2501}, "invalidPositivePrompt", "positivePrompt"),
    ("prompt type", {"positivePrompt": 42}, "invalidPositivePrompt", "positivePrompt"),
    ("width alone", {"height": None}, "missingHeight", "height"),
    ("height alone", {"width": None}, "missingWidth", "width"),
    ("size not in table", {"width": 1024, "height": 768}, "invalidDimensions", ["width", "height"]),
    ("width not int", {"width": "1360"}, "invalidWidth", "width"),
    ("resolution with size", {"resolution": "1k"}, "incompatibleParameters",
     ["resolution", "width", "height"]),
    ("resolution unknown", {"width": None, "height": None, "resolution": "4k", "inputs": REF},
     "invalidResolution", "resolution"),
    ("no size no refs", {"width": None, "height": None}, "missingDimensions",
     ["width", "height", "inputs.referenceImages"]),
    ("resolution without refs", {"width": None, "height": None, "resolution": "1k"},
     "missingDimensions", ["width", "height", "inputs.referenceImages"]),
    ("eleven references", {"inputs": {"referenceImages": ["https://e.com/a.jpg"] * 11}},
     "invalidReferenceImages", "inputs.referenceImages"),
    ("reference not a string", {"inputs": {"referenceImages": [1]}}, "invalidReferenceImages",
     "inputs.referenceImages"),
    ("unknown input", {"inputs": {"maskImage": "x"}}, "unknownParameter", "inputs.maskImage"),
    ("numberResults 0", {"numberResults": 0}, "invalidNumberResults", "numberResults"),
    ("numberResults 21", {"numberResults": 21}, "invalidNumberResults", "numberResults"),
    ("outputType", {"outputType": "url"}, "invalidOutputType", "outputType"),
    ("outputFormat", {"outputFormat": "png"}, "invalidOutputFormat", "outputFormat"),
    ("outputQuality low", {"outputQuality": 19}, "invalidOutputQuality", "outputQuality"),
    ("outputQuality high", {"outputQuality": 100}, "invalidOutputQuality", "outputQuality"),
    ("deliveryMethod", {"deliveryMethod": "later"}, "invalidDeliveryMethod", "deliveryMethod"),
    ("includeCost", {"includeCost": "yes"}, "invalidIncludeCost", "includeCost"),
    ("ttl", {"ttl": 59}, "invalidTtl", "ttl"),
    ("webhookURL", {"webhookURL": "not a url"}, "invalidWebhookURL", "webhookURL"),
    ("safety.mode", {"safety": {"mode": "strict"}}, "invalidSafetyMode", "safety.mode"),
    ("negativePrompt", {"negativePrompt": "blurry"}, "unknownParameter", "negativePrompt"),
    ("seed", {"seed": 7}, "unknownParameter", "seed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "code", "parameter"),
    [case[1:] for case in INVALID_TASKS],
    ids=[case[0] for case in INVALID_TASKS],
)
def test_invalid_task_gets_a_400_with_the_errors_envelope(
    emu: Any, runware: Any, changes: dict[str, Any], code: str, parameter: Any
) -> None:
    task = runware.task(**changes)
    response = runware.post([task])
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == code
    assert error["parameter"] == parameter
    assert error["taskType"] == "imageInference"
    assert error.get("taskUUID") == (
        task["taskUUID"] if isinstance(task.get("taskUUID"), str) else None
    )
    assert isinstance(error["message"], str) and error["message"]
    assert emu.events == []  # nothing was created


def test_every_valid_optional_field_is_accepted(runware: Any) -> None:
    task = runware.task(
        numberResults=1,
        outputType="URL",
        outputFormat="WEBP",
        outputQuality=80,
        deliveryMethod="async",
        webhookURL="https://example.com/hook?token=abc",
        uploadEndpoint="https://bucket.example.com/put",
        includeCost=False,
        ttl=60,
        safety={"checkContent": True, "mode": "fast"},
        inputs={"referenceImages": ["https://example.com/a.jpg", "data:image/png;base64,AAAA"]},
    )
    assert runware.post([task]).status_code == 200


def test_unknown_task_type_and_bad_bodies_are_rejected(runware: Any) -> None:
    unknown = runware.post([{"taskType": "videoInference", "taskUUID": str(uuid.uuid4())}])
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["code"] == "unsupportedTaskType"

    not_an_array = runware.post(RUNWARE_EXAMPLE)
    assert not_an_array.status_code == 400
    assert not_an_array.json()["errors"][0]["code"] == "invalidPayload"

    assert runware.post([]).status_code == 400


def test_a_reused_task_uuid_is_rejected(runware: Any) -> None:
    task = runware.task(deliveryMethod="async")
    assert runware.post([task]).status_code == 200
    again = runware.post([task])
    assert again.status_code == 400
    assert again.json()["errors"][0]["code"] == "duplicateTaskUUID"


def test_only_post_is_allowed(runware: Any) -> None:
    response = runware.http.get(
        runware.url, headers={"Authorization": f"Bearer {EMULATOR_API_KEY}"}
    )
    assert response.status_code == 405
    assert "errors" in response.json()
