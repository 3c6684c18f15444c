"""AIML API end to end against the emulator: one synchronous `POST /v1/images/generations`
whose answer carries the images
(https://docs.aimlapi.com/api-references/image-models/kling-ai/image-o1); references are required
and there is no `auto` aspect ratio."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.errors import ProviderRequestError
from kling_cli.limits import OUTPUT_DIMENSIONS
from kling_cli.providers.aimlapi import Aiml
from kling_cli.providers.base import Endpoint, HttpResponse, TaskHandle, TaskState
from kling_cli.request import build_request

SUBMIT_PATH = "/v1/images/generations"
REF = "https://example.com/reference.png"


@pytest.fixture(autouse=True)
def no_real_aiml_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIMLAPI_API_KEY", raising=False)


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def test_one_request_with_the_documented_fields(run_cli, use_emulator: Emulator) -> None:
    prompt = "Put @image_1 on a beach at sunset"
    result = run_cli("generate", prompt, "-r", REF, "-a", "16:9", "-p", "aimlapi", "--json")
    assert result.exit_code == 0, result.stderr

    [submit] = api_requests(use_emulator)
    assert (submit.method, submit.path) == ("POST", SUBMIT_PATH)
    assert submit.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert submit.headers["content-type"] == "application/json"
    # API reference body fields; the prompt tokens of the fal family (inferred).
    assert submit.json() == {
        "model": "klingai/image-o1",
        "prompt": "Put @Image1 on a beach at sunset",
        "image_urls": [REF],
        "aspect_ratio": "16:9",
        "resolution": "1K",
        "output_format": "png",
        "num_images": 1,
    }
    [entry] = result.json()["files"]
    assert (entry["width"], entry["height"]) == OUTPUT_DIMENSIONS[("1k", "16:9")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["-a", "1:1"], "needs at least one --ref", id="text only"),
        pytest.param(["-r", REF, "-a", "auto"], "has no `auto`", id="explicit auto"),
        pytest.param(["-r", REF, "-a", "1:1", "--negative-prompt", "blur"], "negative", id="neg"),
    ],
)
def test_refused_before_the_network(
    run_cli, use_emulator: Emulator, args: list[str], message: str
) -> None:
    result = run_cli("generate", "a red fox", *args, "-p", "aimlapi")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not api_requests(use_emulator)


def test_without_an_aspect_ratio_a_reference_gets_a_square(run_cli, use_emulator: Emulator) -> None:
    # `auto` is kling-cli's default with references; AIML has none (API reference), so the CLI
    # picks 1:1.
    result = run_cli("generate", "restyle", "-r", REF, "-p", "aimlapi")
    assert result.exit_code == 0, result.stderr
    [submit] = api_requests(use_emulator)
    assert submit.json()["aspect_ratio"] == "1:1"


def test_ten_references_in_order(run_cli, use_emulator: Emulator) -> None:
    refs = [f"https://example.com/{i}.png" for i in range(1, 11)]
    prompt = "@image_1 wearing the hat from @image_10"
    args = [a for r in refs for a in ("-r", r)]
    result = run_cli("generate", prompt, *args, "-a", "1:1", "-p", "aimlapi")
    assert result.exit_code == 0, result.stderr
    [submit] = api_requests(use_emulator)
    assert submit.json()["image_urls"] == refs
    assert submit.json()["prompt"] == "@Image1 wearing the hat from @Image10"


def test_nine_images_are_one_request(run_cli, use_emulator: Emulator) -> None:
    result = run_cli(
        "generate", "restyle", "-r", REF, "-a", "1:1", "-n", "9", "-p", "aimlapi", "--json"
    )
    assert result.exit_code == 0, result.stderr
    [submit] = api_requests(use_emulator)
    assert submit.json()["num_images"] == 9
    assert len({entry["path"] for entry in result.json()["files"]}) == 9


@pytest.mark.parametrize(("fmt", "pil_format"), [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_format(run_cli, use_emulator: Emulator, fmt: str, pil_format: str) -> None:
    result = run_cli("generate", "restyle", "-r", REF, "-a", "1:1", "-f", fmt, "-p", "aimlapi")
    assert result.exit_code == 0, result.stderr
    assert api_requests(use_emulator)[0].json()["output_format"] == fmt
    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.format == pil_format


def test_a_failed_generation_exits_3(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("aimlapi", Fault(kind="task_failure", message="Content policy violation"))
    result = run_cli("generate", "restyle", "-r", REF, "-a", "1:1", "-p", "aimlapi", "--json")
    assert result.exit_code == 3, result.stderr
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert "Content policy violation" in body["error"]["message"]


def test_a_wrong_key_exits_4(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("KLING_AIMLAPI_API_KEY", "aiml-wrong-key-0123456789")
    result = run_cli("generate", "restyle", "-r", REF, "-a", "1:1", "-p", "aimlapi")
    assert result.exit_code == 4
    assert "kling config set-key aimlapi" in result.stderr
    assert "aiml-wrong-key-0123456789" not in result.stdout + result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("aimlapi", Fault(kind="rate_limit", on="submit", retry_after=0, times=50))
    result = run_cli("generate", "restyle", "-r", REF, "-a", "1:1", "-p", "aimlapi")
    assert result.exit_code == 6


def test_the_key_goes_to_the_api_origin_only(run_cli, use_emulator: Emulator) -> None:
    result = run_cli("generate", "restyle", "-r", REF, "-a", "1:1", "-n", "2", "-p", "aimlapi")
    assert result.exit_code == 0, result.stderr
    downloads = [r for r in use_emulator.requests if r.server == "images"]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)


# The documented answer (API reference, verbatim) on the adapter.

AIML = Aiml()


def test_the_documented_answer_is_the_result_with_its_cost() -> None:
    body = {
        "data": [
            {
                "url": "https://cdn.aimlapi.com/flamingo/files/b/0a86f297/"
                "-XYQFo9KwWdoIiU8LywM4_21acef8f06694a78a0bc1f443875cfa3.png"
            }
        ],
        "meta": {"usage": {"credits_used": 58800}},
    }
    request = build_request(prompt="restyle", references=(REF,), aspect_ratio="1:1")
    submission = AIML.build_submit(request, Endpoint("https://api.aimlapi.com", "k"))
    task, status = AIML.parse_submit(HttpResponse(200, {}, json.dumps(body).encode()), submission)
    assert status.state is TaskState.SUCCEEDED
    assert [o.url for o in status.outputs] == [body["data"][0]["url"]]  # type: ignore[index]
    assert status.cost == pytest.approx(0.0294)
    with pytest.raises(ProviderRequestError, match="keeps no task"):
        AIML.build_poll(task, Endpoint("https://api.aimlapi.com", "k"))


def test_a_poll_is_never_needed() -> None:
    with pytest.raises(ProviderRequestError):
        AIML.build_poll(TaskHandle("aimlapi", "aiml-x"), Endpoint("https://api.aimlapi.com", "k"))


def test_a_schema_refusal_is_a_request_error_not_a_failed_generation() -> None:
    body = {"statusCode": 400, "message": "Body validation error!", "error": "Bad Request"}
    request = build_request(prompt="restyle", references=(REF,), aspect_ratio="1:1")
    submission = AIML.build_submit(request, Endpoint("https://api.aimlapi.com", "k"))
    with pytest.raises(ProviderRequestError, match="Body validation error"):
        AIML.parse_submit(HttpResponse(400, {}, json.dumps(body).encode()), submission)
