"""Kling's official API end to end against the emulator: the omni-image body
(https://kling.ai/document-api/api/image/o1/image-generation), a JWT per request, the task poll,
and the business codes that decide what an error means (Kling's general docs, as copied
in github.com/inference-sh/grid `api/klingai/docs/00-general.md`)."""

from __future__ import annotations

import json
import time
import uuid
import warnings

import jwt
import pytest
from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator, Fault
from kling_cli.errors import (
    AuthError,
    OutOfCreditsError,
    ProviderRequestError,
    RateLimitedError,
)
from kling_cli.limits import OUTPUT_DIMENSIONS
from kling_cli.providers.base import Endpoint, HttpResponse, TaskHandle, TaskState
from kling_cli.providers.kling import Kling, mint_token
from kling_cli.request import build_request

SUBMIT_PATH = "/v1/images/omni-image"
# The API reference example's three reference URLs.
DOC_REFS = [
    "https://v1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/multi-4.png",
    "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/1.png",
    "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/4.png",
]


@pytest.fixture
def emu(use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """`use_emulator` sets the access key; Kling also needs the secret key, and the emulator
    takes its key as both."""
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", EMULATOR_API_KEY)
    return use_emulator


def api_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.server == "api"]


def submits(emu: Emulator) -> list:
    return [r for r in api_requests(emu) if r.method == "POST"]


def decode(token: str, secret: str = EMULATOR_API_KEY, *, check_times: bool = True) -> dict:
    options = {
        "require": ["iss", "exp", "nbf"],
        "verify_exp": check_times,
        "verify_nbf": check_times,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyJWT on the short emulator secret
        return jwt.decode(token, secret, algorithms=["HS256"], options=options)


def test_minimal_text_to_image_matches_the_documented_example(run_cli, emu: Emulator) -> None:
    prompt = "A lighthouse at dusk, oil painting"
    result = run_cli("generate", prompt, "-p", "kling", "-a", "16:9", "-n", "2")
    assert result.exit_code == 0, result.stderr

    submit, *polls = api_requests(emu)
    assert (submit.method, submit.path) == ("POST", SUBMIT_PATH)
    assert submit.headers["content-type"] == "application/json"
    body = submit.json()
    assert uuid.UUID(body["external_task_id"]).version == 4
    # A minimal text-to-image body (API reference), plus the lookup id kling-cli always sends.
    assert body == {
        "model_name": "kling-image-o1",
        "prompt": prompt,
        "resolution": "1k",
        "n": 2,
        "aspect_ratio": "16:9",
        "external_task_id": body["external_task_id"],
    }
    assert polls, "the task is polled until it is done"
    task_ids = {poll.path.rsplit("/", 1)[1] for poll in polls}
    assert all(p.method == "GET" and p.path.startswith(f"{SUBMIT_PATH}/") for p in polls)
    assert len(task_ids) == 1

    paths = result.stdout.split()
    assert len(paths) == 2
    for path in paths:
        with Image.open(path) as image:
            assert image.size == OUTPUT_DIMENSIONS[("1k", "16:9")]


def test_references_match_the_documented_example(run_cli, emu: Emulator) -> None:
    prompt = "Merge all the people in @image_1 and @image_2 into the @image_3 image"
    refs = [arg for url in DOC_REFS for arg in ("-r", url)]
    result = run_cli("generate", prompt, *refs, "-p", "kling", "-R", "2k", "-a", "3:2")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(emu)
    body = submit.json()
    # The API reference example, without its element_list (kling-cli has no elements).
    assert body == {
        "model_name": "kling-image-o1",
        "prompt": "Merge all the people in <<<image_1>>> and <<<image_2>>> into the "
        "<<<image_3>>> image",
        "image_list": [{"image": url} for url in DOC_REFS],
        "resolution": "2k",
        "n": 1,
        "aspect_ratio": "3:2",
        "external_task_id": body["external_task_id"],
    }


def test_every_request_carries_a_fresh_documented_jwt(run_cli, emu: Emulator) -> None:
    before = int(time.time())
    result = run_cli("generate", "a red fox", "-p", "kling")
    after = int(time.time())
    assert result.exit_code == 0, result.stderr
    requests = api_requests(emu)
    assert len(requests) >= 2
    for request in requests:
        scheme, _, token = request.headers["authorization"].partition(" ")
        assert scheme == "Bearer"
        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
        claims = decode(token)
        # General docs: exactly iss, exp and nbf; valid from 5 s ago for 30 minutes.
        assert set(claims) == {"iss", "exp", "nbf"}
        assert claims["iss"] == EMULATOR_API_KEY
        assert claims["exp"] - claims["nbf"] == 1805
        assert before - 5 <= claims["nbf"] <= after - 5
    assert EMULATOR_API_KEY not in result.stdout + result.stderr


def test_the_token_is_signed_with_the_secret_key_not_the_access_key() -> None:
    token = mint_token("AK-access", "SK-secret-0123456789abcdef0123456789", now=1_700_000_000)
    claims = decode(token, "SK-secret-0123456789abcdef0123456789", check_times=False)
    assert claims == {"iss": "AK-access", "exp": 1_700_001_800, "nbf": 1_699_999_995}
    with pytest.raises(jwt.InvalidSignatureError):
        decode(token, "AK-access", check_times=False)


def test_ten_references_in_order(run_cli, emu: Emulator) -> None:
    refs = [f"https://example.com/{i}.png" for i in range(1, 11)]
    prompt = "@image_1 wearing the hat from @image_10"
    result = run_cli("generate", prompt, *[a for r in refs for a in ("-r", r)], "-p", "kling")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(emu)
    body = submit.json()
    assert body["image_list"] == [{"image": r} for r in refs]
    assert body["prompt"] == "<<<image_1>>> wearing the hat from <<<image_10>>>"
    assert body["aspect_ratio"] == "auto"


def test_nine_images_are_one_task(run_cli, emu: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-n", "9", "-p", "kling", "--json")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(emu)
    assert submit.json()["n"] == 9
    assert len({entry["path"] for entry in result.json()["files"]}) == 9


def test_a_failed_task_exits_3(run_cli, emu: Emulator) -> None:
    emu.inject("kling", Fault(kind="task_failure", message="Failure to pass the risk control"))
    result = run_cli("generate", "a red fox", "-p", "kling", "--json")
    assert result.exit_code == 3
    body = result.json()
    assert body["error"]["code"] == "task_failed"
    assert "Failure to pass the risk control" in body["error"]["message"]
    assert body["job"]["provider"] == "kling" and body["job"]["state"] == "failed"


@pytest.mark.parametrize("variable", ["KLING_KLING_API_KEY", "KLING_KLING_SECRET_KEY"])
def test_a_wrong_key_exits_4(run_cli, emu: Emulator, monkeypatch, variable: str) -> None:
    monkeypatch.setenv(variable, "wrong-key-0123456789abcdef0123456789")
    result = run_cli("generate", "a red fox", "-p", "kling")
    assert result.exit_code == 4, result.stderr
    assert "kling config set-key kling" in result.stderr
    assert "wrong-key-0123456789abcdef0123456789" not in result.stdout + result.stderr


def test_the_providers_own_variables_work(run_cli, emu: Emulator, monkeypatch) -> None:
    monkeypatch.delenv("KLING_KLING_API_KEY")
    monkeypatch.delenv("KLING_KLING_SECRET_KEY")
    monkeypatch.setenv("KLING_ACCESS_KEY", EMULATOR_API_KEY)
    monkeypatch.setenv("KLING_SECRET_KEY", EMULATOR_API_KEY)
    result = run_cli("generate", "a red fox", "-p", "kling")
    assert result.exit_code == 0, result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, emu: Emulator) -> None:
    emu.inject("kling", Fault(kind="rate_limit", on="submit", retry_after=0, times=50))
    result = run_cli("generate", "a red fox", "-p", "kling")
    assert result.exit_code == 6, result.stderr
    assert len(submits(emu)) > 1, "a 429 with 1302/1303 and Retry-After is retried"


def test_the_key_goes_to_the_api_origin_only(run_cli, emu: Emulator) -> None:
    result = run_cli("generate", "a red fox", "-n", "2", "-p", "kling")
    assert result.exit_code == 0, result.stderr
    assert all("authorization" in r.headers for r in api_requests(emu))
    downloads = [r for r in emu.requests if r.server == "images"]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)


def test_status_finds_a_task_by_its_id(run_cli, emu: Emulator) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "kling", "--no-wait")
    assert submitted.exit_code == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    time.sleep(0.4)
    status = run_cli("status", task_id, "-p", "kling", "--json")
    assert status.exit_code == 0, status.stderr
    [task] = status.json()["job"]["tasks"]
    assert task["state"] == "succeeded" and len(task["outputs"]) == 1


def test_status_also_finds_it_by_the_external_task_id(run_cli, emu: Emulator) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "kling", "--no-wait")
    assert submitted.exit_code == 0, submitted.stderr
    external = submits(emu)[0].json()["external_task_id"]
    time.sleep(0.4)
    status = run_cli("status", external, "-p", "kling", "--json")
    assert status.exit_code == 0, status.stderr
    [task] = status.json()["job"]["tasks"]
    assert task["state"] == "succeeded" and len(task["outputs"]) == 1


@pytest.mark.parametrize("phase", ["submit", "poll"])
def test_429_with_1102_exits_6_without_retries(run_cli, emu: Emulator, phase: str) -> None:
    emu.inject("kling", Fault(kind="out_of_credits", on=phase))
    result = run_cli("generate", "a red fox", "-p", "kling", "--json")
    assert result.exit_code == 6, result.stderr
    body = result.json()
    assert body["error"]["code"] == "out_of_credits"
    assert "retrying" not in result.stderr
    api = [r for r in emu.requests if r.server == "api"]
    assert sum(1 for r in api if r.method == "POST") == 1
    assert sum(1 for r in api if r.method == "GET") == (1 if phase == "poll" else 0)


# Business codes (general docs): pure checks of the adapter on the documented bodies.

KLING = Kling()
TASK = TaskHandle("kling", "845392817361236048", expected_images=2)


def answer(status_code: int, body: object) -> HttpResponse:
    return HttpResponse(status_code, {}, json.dumps(body).encode())


def refusal(status_code: int, code: int, message: str = "refused") -> HttpResponse:
    return answer(status_code, {"code": code, "message": message, "request_id": "uuid"})


def test_the_documented_success_answer() -> None:
    body = {
        "code": 0,
        "message": "SUCCEED",
        "request_id": "r",
        "data": {
            "task_id": TASK.task_id,
            "task_status": "succeed",
            "task_status_msg": "",
            "task_result": {
                "result_type": "single",
                "images": [
                    {"index": 1, "url": "https://cdn.klingai.com/1.png"},
                    {"index": 0, "url": "https://cdn.klingai.com/0.png"},
                ],
            },
            "final_unit_deduction": "8",
        },
    }
    status = KLING.parse_poll(answer(200, body), TASK)
    assert status.state is TaskState.SUCCEEDED and status.provider_status == "succeed"
    assert [o.url for o in status.outputs] == [
        "https://cdn.klingai.com/0.png",
        "https://cdn.klingai.com/1.png",
    ]


@pytest.mark.parametrize(
    ("raw", "state"),
    [("submitted", TaskState.PENDING), ("processing", TaskState.RUNNING)],
)
def test_unfinished_states(raw: str, state: TaskState) -> None:
    body = {"code": 0, "data": {"task_id": TASK.task_id, "task_status": raw}}
    assert KLING.parse_poll(answer(200, body), TASK).state is state


def test_a_failed_task_is_200_with_code_0() -> None:
    body = {
        "code": 0,
        "data": {
            "task_status": "failed",
            "task_status_msg": "Failure to pass the risk control system",
            "task_result": {},
        },
    }
    status = KLING.parse_poll(answer(200, body), TASK)
    assert status.state is TaskState.FAILED
    assert status.error == "Failure to pass the risk control system"


def test_a_non_zero_code_is_an_error_even_with_http_200() -> None:
    with pytest.raises(ProviderRequestError, match="code 1201"):
        KLING.parse_poll(refusal(200, 1201, "invalid parameter"), TASK)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1004])
def test_auth_codes(code: int) -> None:
    with pytest.raises(AuthError) as caught:
        KLING.parse_poll(refusal(401, code), TASK)
    assert "kling config set-key kling" in (caught.value.hint or "")


@pytest.mark.parametrize("code", [1100, 1101, 1102])
def test_account_codes_are_out_of_credits_and_not_retried(code: int) -> None:
    response = refusal(429, code, "resource pack exhausted")
    assert not KLING.is_retryable(response)
    with pytest.raises(OutOfCreditsError) as caught:
        KLING.parse_poll(response, TASK)
    assert caught.value.exit_code == 6


@pytest.mark.parametrize("code", [1302, 1303])
def test_rate_codes_are_retried(code: int) -> None:
    response = refusal(429, code, "parallel task over resource pack limit")
    assert KLING.is_retryable(response)
    with pytest.raises(RateLimitedError) as caught:
        KLING.parse_poll(response, TASK)
    assert not isinstance(caught.value, OutOfCreditsError)


def test_a_policy_refusal_at_submit_fails_the_task() -> None:
    request = build_request(prompt="a red fox")
    submission = KLING.build_submit(
        request, Endpoint("https://api-singapore.klingai.com", "a", "s")
    )
    task, status = KLING.parse_submit(refusal(400, 1301, "content-safety"), submission)
    assert task.task_id == submission.client_task_id
    assert status.state is TaskState.FAILED and "content-safety" in (status.error or "")


def test_a_relay_without_a_secret_gets_the_plain_key() -> None:
    request = build_request(prompt="a red fox")
    endpoint = Endpoint("https://api.cometapi.com/kling", "sk-relay")
    submission = KLING.build_submit(request, endpoint)
    assert submission.request.url == "https://api.cometapi.com/kling/v1/images/omni-image"
    assert submission.request.headers["Authorization"] == "Bearer sk-relay"
    assert KLING.build_poll(TASK, endpoint).headers == {"Authorization": "Bearer sk-relay"}


def test_a_lost_submit_answer_is_looked_up_by_external_task_id(run_cli, emu: Emulator) -> None:
    emu.inject("kling", Fault(kind="lost_response", on="submit"))
    result = run_cli("generate", "a red fox", "-p", "kling")
    assert result.exit_code == 0, result.stderr
    [submit] = submits(emu)
    external = submit.json()["external_task_id"]
    first_poll = next(r for r in api_requests(emu) if r.method == "GET")
    assert first_poll.path == f"{SUBMIT_PATH}/{external}"
    assert [event[1] for event in emu.events].count("created") == 1


def test_a_kling_native_relay_takes_a_plain_bearer_key(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relay (CometAPI and similar): `auth = "bearer"` sends the key itself, no JWT, and
    # needs no secret key. The emulator's Kling accepts only JWTs, so the relay is refused
    # there with Kling's auth error: proof that no JWT was minted.
    monkeypatch.delenv("KLING_KLING_SECRET_KEY", raising=False)
    assert run_cli("config", "set", "providers.kling.auth", "bearer").exit_code == 0
    result = run_cli("generate", "a red fox", "-p", "kling")
    assert result.exit_code == 4
    [submit] = [r for r in use_emulator.requests if r.server == "api"]
    assert submit.headers["authorization"] == "Bearer emulator-key"
    assert run_cli("config", "set", "providers.kling.auth", "basic").exit_code == 4
