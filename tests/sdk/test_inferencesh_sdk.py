"""kling against inference.sh's official SDK (PyPI `inferencesh`).

The SDK is pointed at the emulator through its documented `base_url` argument
(`inference(api_key=..., base_url=...)`, inferencesh SDK 0.36 `client.py`). Its `run()` sends
`POST /apps/run` with the params as given, `input` passed through `_process_input_data`, which
leaves URLs alone and uploads local paths, data URIs and base64 (SDK `_process_input_data`); then,
waiting, it follows the task on the NDJSON stream `GET /tasks/{id}/stream` (SDK
`_stream_updates`). So the tests give the SDK the app input an SDK user would write for the same
kling run (the app's fields, https://inference.sh/apps/klingai/image-o1) and compare the run bodies
field for field.
"""

from __future__ import annotations

from typing import Any

import pytest
from inferencesh import TaskStatus, inference

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, RecordedRequest

from . import loopback_only, take_api_requests

APP = "klingai/image-o1"
REF = "https://example.com/ref.png"


def run_body(request: RecordedRequest) -> dict[str, Any]:
    assert (request.method, request.path) == ("POST", "/apps/run")
    assert request.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert isinstance(body, dict)
    return body


def task_id_of(path: str) -> str:
    assert path.startswith("/tasks/")
    return path.removeprefix("/tasks/").split("/")[0]


@pytest.mark.parametrize(
    "prompt, cli_args, app_input",
    [
        pytest.param(
            "A paper boat on a rain-soaked street, in the style of @image_1",
            ["-r", REF, "-a", "3:2", "-R", "2k", "--negative-prompt", "text, watermark"],
            {
                "image": REF,
                "negative_prompt": "text, watermark",
                "aspect_ratio": "3:2",
                "resolution": "2k",
            },
            id="reference-and-negative-prompt",
        ),
        pytest.param(
            "A paper boat on a rain-soaked street at dusk",
            ["-a", "9:16"],
            # kling's resolution default is 1k; the app's too, stated for the same parameters.
            {"aspect_ratio": "9:16", "resolution": "1k"},
            id="text-only",
        ),
    ],
)
def test_run_body_matches_the_sdk(
    run_cli,
    use_emulator: Emulator,
    prompt: str,
    cli_args: list[str],
    app_input: dict[str, Any],
) -> None:
    # inference.sh documents no other token form, so `@image_1` goes as written (app page).
    result = run_cli("generate", prompt, "-p", "inferencesh", *cli_args)
    assert result.exit_code == 0, result.stderr
    kling_run, *kling_polls = take_api_requests(use_emulator)

    client = inference(api_key=EMULATOR_API_KEY, base_url=use_emulator.base_url("inferencesh"))
    with loopback_only():
        task = client.run({"app": APP, "input": {"prompt": prompt, **app_input}})
    assert task["status"] == TaskStatus.COMPLETED
    assert task["output"]["image"]
    sdk_run, *sdk_follow = take_api_requests(use_emulator)

    kling, sdk = run_body(kling_run), run_body(sdk_run)
    # Top level: the app and its input, nothing else (no webhook, wait or stream: SDK `run`).
    assert set(kling) == set(sdk) == {"app", "input"}
    assert kling["app"] == sdk["app"] == APP
    shared = set(kling["input"]) & set(sdk["input"])
    assert {k: kling["input"][k] for k in shared} == {k: sdk["input"][k] for k in shared}
    # kling states `n: 1`, the app's default (app page): the app returns one image whatever `n`
    # says but bills `n`, so kling pins it rather than leave it to a default.
    assert set(sdk["input"]) - set(kling["input"]) == set()
    assert {k: kling["input"][k] for k in set(kling["input"]) - set(sdk["input"])} == {"n": 1}

    # Both follow the task on its NDJSON stream (SDK `_stream_updates`); kling then reads the
    # outputs with one GET, as the SDK does when it reconciles.
    assert kling_polls and sdk_follow
    kling_task_id = task_id_of(kling_polls[0].path)
    assert {(r.method, r.path) for r in kling_polls} == {
        ("GET", f"/tasks/{kling_task_id}/stream"),
        ("GET", f"/tasks/{kling_task_id}"),
    }
    sdk_task_id = task_id_of(sdk_follow[0].path)
    assert sdk_task_id == task["id"]
    assert {(r.method, r.path) for r in sdk_follow} <= {
        ("GET", f"/tasks/{sdk_task_id}/stream"),
        ("GET", f"/tasks/{sdk_task_id}"),
    }
    for request in kling_polls + sdk_follow:
        assert request.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
