"""kling against WaveSpeed's official SDK (PyPI `wavespeed`).

The SDK is pointed at the emulator through its documented `base_url` argument
(`wavespeed.Client(api_key=..., base_url=...)`; PyPI wavespeed 2.0.5). `Client.run()` POSTs
the input as given to `/api/v3/{model}` (adding only `enable_sync_mode` when asked), then polls
`GET /api/v3/predictions/{id}/result` (SDK `client.py`). So the tests give the SDK the input an SDK
user would write for the same kling run (the model's fields and `<<<image_N>>>` tokens,
https://wavespeed.ai/models/kwaivgi/kling-image-o1) and compare the submit bodies and the polls.
"""

from __future__ import annotations

from typing import Any

import pytest
import wavespeed

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, RecordedRequest

from . import loopback_only, take_api_requests

MODEL = "kwaivgi/kling-image-o1"
SUBMIT_PATH = f"/api/v3/{MODEL}"
REFS = ["https://example.com/jacket.png", "https://example.com/woman.png"]


def submit_body(request: RecordedRequest) -> dict[str, Any]:
    assert (request.method, request.path) == ("POST", SUBMIT_PATH)
    assert request.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert isinstance(body, dict)
    return body


def polled_ids(polls: list[RecordedRequest]) -> set[str]:
    ids = set()
    for poll in polls:
        assert poll.method == "GET"
        assert poll.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
        prefix, _, rest = poll.path.partition("/api/v3/predictions/")
        task_id, _, tail = rest.partition("/")
        assert (prefix, tail) == ("", "result"), poll.path
        ids.add(task_id)
    return ids


@pytest.mark.parametrize(
    "prompt, cli_args, sdk_input",
    [
        pytest.param(
            "The woman in @image_2 wears the jacket from @image_1",
            ["-r", REFS[0], "-r", REFS[1], "-R", "2k", "-n", "2"],
            {
                # WaveSpeed names inputs <<<image_N>>> "in array order" (model page).
                "prompt": "The woman in <<<image_2>>> wears the jacket from <<<image_1>>>",
                "images": REFS,
                "aspect_ratio": "auto",  # kling's aspect with references and no -a
                "resolution": "2k",
                "num_images": 2,
            },
            id="references",
        ),
        pytest.param(
            "A glass greenhouse full of orchids, soft morning light",
            ["-a", "21:9"],
            {
                "prompt": "A glass greenhouse full of orchids, soft morning light",
                "aspect_ratio": "21:9",
            },
            id="text-only",
        ),
    ],
)
def test_submit_body_and_polls_match_the_sdk(
    run_cli,
    use_emulator: Emulator,
    prompt: str,
    cli_args: list[str],
    sdk_input: dict[str, Any],
) -> None:
    result = run_cli("generate", prompt, "-p", "wavespeed", *cli_args)
    assert result.exit_code == 0, result.stderr
    kling_submit, *kling_polls = take_api_requests(use_emulator)

    client = wavespeed.Client(
        api_key=EMULATOR_API_KEY,
        base_url=use_emulator.base_url("wavespeed"),
        max_retries=0,  # a failed task should fail the test, not be submitted again
    )
    with loopback_only():
        output = client.run(MODEL, sdk_input, poll_interval=0.1, timeout=30)
    assert len(output["outputs"]) == sdk_input.get("num_images", 1)
    sdk_submit, *sdk_polls = take_api_requests(use_emulator)

    kling, sdk = submit_body(kling_submit), submit_body(sdk_submit)
    shared = set(kling) & set(sdk)
    assert {k: kling[k] for k in shared} == {k: sdk[k] for k in shared}
    # The SDK adds nothing to the input (`enable_sync_mode` only when asked, SDK).
    assert set(sdk) - set(kling) == set()
    # kling states `resolution` and `num_images` even at the documented defaults (1k, 1:
    # model page), so the output never depends on a default.
    documented_defaults = {"resolution": "1k", "num_images": 1}
    assert {k: kling[k] for k in set(kling) - set(sdk)} == {
        k: v for k, v in documented_defaults.items() if k not in sdk
    }

    # Both poll the same documented route, `/result` included (model page), for their own task.
    assert len(polled_ids(kling_polls)) == 1
    assert len(polled_ids(sdk_polls)) == 1
    assert polled_ids(kling_polls) != polled_ids(sdk_polls)
