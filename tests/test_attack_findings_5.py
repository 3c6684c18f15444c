"""Fifth round of breaks, against #19's delivery options (`--webhook`, `--upload-to`) and
`kling ingest`, each reproduced on the installed `kling` in real processes against the
emulator over loopback."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kling_cli.emulator import EMULATOR_API_KEY, Emulator
from tests.test_entry_point import kling_command, run

SECRET_URLS = [
    # plain http to another host: refused, and the refusal echoed the whole URL
    "http://alice:pa55word@hooks.example.com/in?token=TOPSECRET",
    # a scheme that is not a URL a provider can POST to
    "ftp://alice:pa55word@hooks.example.com/in?token=TOPSECRET",
]


@pytest.mark.parametrize("url", SECRET_URLS)
@pytest.mark.parametrize("option", ["--webhook", "--upload-to"])
def test_a_refused_delivery_url_is_not_echoed_with_its_credentials(
    use_emulator: Emulator, url: str, option: str
) -> None:
    """`kling generate fox --webhook 'http://alice:pa55word@host/in?token=TOPSECRET' --json`
    was refused (good) with a message quoting the URL whole: the password and the token in
    the error, on the terminal, in CI logs and in the --json object."""
    result = run("generate", "a fox", "-p", "runware", option, url, "--json")
    assert result.returncode == 2, result.stdout
    for secret in ("pa55word", "TOPSECRET"):
        assert secret not in result.stdout + result.stderr
    message = json.loads(result.stdout)["error"]["message"]
    assert "hooks.example.com" in message  # still says which URL
    assert use_emulator.requests == []


@pytest.mark.parametrize("char", ["\x01", "\x7f", "\u202e"])
def test_a_delivery_url_with_control_characters_is_refused(
    use_emulator: Emulator, char: str
) -> None:
    """A control character (or a bidi override) inside `--webhook` was accepted, sent to
    the provider and recorded in the journal, where it shows as a different URL."""
    result = run("generate", "a fox", "-p", "runware", "--webhook", f"https://h.example/a{char}b")
    assert result.returncode == 2, result.stdout
    assert "https://" in result.stderr
    assert use_emulator.requests == []


def test_an_ipv6_webhook_is_recorded_as_a_url(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """`--webhook 'http://[::1]:9/hook?token=T'` was recorded as `http://::1:9/hook?…`: the
    brackets dropped, so the journal's URL names no port (or the wrong host)."""
    result = run(
        "generate", "a fox", "-p", "runware", "--no-wait", "--webhook",
        "http://[::1]:9/hook?token=T", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(isolated_environment / "jobs.sqlite3")
    try:
        (request,) = db.execute("SELECT request FROM jobs").fetchone()
    finally:
        db.close()
    recorded = json.loads(request)["webhook"]
    assert recorded == "http://[::1]:9/hook?…"


def test_ingest_of_an_endless_stdin_stops_at_a_cap(use_emulator: Emulator) -> None:
    """`producer | kling ingest -` read stdin whole before parsing: an endless (or 500 MB)
    stream grew the process until the machine ran out of memory. A webhook body is a few
    kilobytes; past a cap ingest refuses it, exit 2, without reading the rest."""
    process = subprocess.Popen(
        [*kling_command(), "ingest", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    stdin = process.stdin

    def feed() -> None:
        chunk = b'{"data": "' + b"a" * (1 << 20)
        try:
            while process.poll() is None:
                stdin.write(chunk)
        except (BrokenPipeError, ValueError, OSError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    started = time.monotonic()
    try:
        process.wait(timeout=30)  # not communicate(): it would close stdin, ending the stream
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("kling ingest - kept reading an endless stdin")
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    assert time.monotonic() - started < 30
    assert process.returncode == 2, err
    assert "too large" in json.loads(out)["error"]["message"]


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        # fal's webhook docs: `payload` null with `payload_error` when the result could not
        # be put in the body; the images exist and the queue's result has them
        ("fal", {"status": "OK", "payload": None, "payload_error": "could not serialize"}),
        ("fal", {"status": "OK", "payload": {"images": []}}),
        ("wavespeed", {"status": "completed", "outputs": []}),
        ("kling", {"task_status": "succeed", "task_result": {"images": []}}),
    ],
)
def test_a_success_body_without_images_does_not_lose_the_job(
    use_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    provider: str,
    payload: dict[str, object],
) -> None:
    """fal POSTs `status: OK` with no usable images: `kling ingest` recorded the paid job
    as failed ("failed: failed", exit 3, and `kling status --download` then saved nothing,
    exit 0), or ended with exit 1, `job: null`. The body says the task ended without saying
    how: ingest asks the provider, as `kling status ID --download` would."""
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", EMULATOR_API_KEY)  # Kling signs with a pair
    ref = ["-r", "https://example.com/a.png"] if provider == "fal" else []
    submitted = run("generate", "a fox", "-p", provider, *ref, "--no-wait", "--json")
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)["job"]
    time.sleep(0.6)  # the emulator's job is done
    body = tmp_path / "body.json"
    id_field = {"fal": "request_id", "wavespeed": "id", "kling": "task_id"}[provider]
    body.write_text(json.dumps({id_field: job["task_id"], **payload}))
    result = run("ingest", str(body), "--json")
    assert result.returncode == 0, result.stdout
    out = json.loads(result.stdout)
    assert out["job"]["id"] == job["id"]
    assert out["job"]["state"] == "succeeded"
    assert len(out["files"]) == 1 and Path(out["files"][0]["path"]).exists()


def test_upload_to_a_receiver_that_is_down_is_not_reported_uploaded(
    use_emulator: Emulator,
) -> None:
    """`kling generate fox -p runware --upload-to URL` with the receiver down (or answering
    403) said "Runware uploaded the images to URL; nothing was saved here.": kling cannot
    know the PUT worked (Runware's docs say nothing of a failed upload), and the user was
    left without the way to the images. The note says what was asked, and how to save
    them here."""
    # A port bound but never listening refuses every connection, and stays ours while the
    # test runs, so no other test's server (in parallel workers) can be handed it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}/bucket/fox.png?X-Amz-Signature=s"
        result = run("generate", "a fox", "-p", "runware", "--upload-to", down, "--json")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)["job"]
    assert job["state"] == "generated"
    assert "uploaded the images" not in result.stderr
    assert f"kling status {job['id']} --download" in result.stderr
    saved = run("status", job["id"], "--download", "--json")
    assert saved.returncode == 0, saved.stderr
    assert len(json.loads(saved.stdout)["files"]) == 1


@pytest.mark.parametrize("ttl", ["9999999999999", "99999999999999999999999"])
def test_a_url_ttl_past_any_date_is_refused_before_paying(use_emulator: Emulator, ttl: str) -> None:
    """`kling generate fox -p runware --url-ttl 9999999999999`: the submit was paid, the
    image saved, then the sidecar's `result_url_expires` (submitted + ttl) overflowed the
    calendar: exit 1 "Unexpected ValueError: year 318914 is out of range ... this is a
    bug", the job recorded `error`."""
    result = run("generate", "a fox", "-p", "runware", "--url-ttl", ttl, "--json")
    assert result.returncode == 2, result.stdout
    assert "--url-ttl" in json.loads(result.stdout)["error"]["message"]
    assert use_emulator.requests == []


@pytest.mark.parametrize("provider", ["fal", "runware"])  # in the query; in the body
def test_a_dry_run_does_not_print_the_webhook_token(use_emulator: Emulator, provider: str) -> None:
    """`kling generate fox --webhook 'https://u:pw@hooks.example/in?token=TOKSEC' --dry-run
    --json` printed the token and password in the request shown (fal's `?fal_webhook=`,
    Runware's `webhookURL`), while the API key beside them is `<redacted>`: a dry run is
    what gets pasted into CI logs and issues."""
    url = "https://u:PW5ecret@hooks.example/in?token=TOKSEC"
    ref = ["-r", "https://example.com/a.png"] if provider == "fal" else []
    for extra in ([], ["--json"]):
        result = run(
            "generate", "a fox", "-p", provider, *ref, "--webhook", url, "--dry-run", *extra
        )
        assert result.returncode == 0, result.stderr
        shown = result.stdout + result.stderr
        assert "TOKSEC" not in shown and "PW5ecret" not in shown
        assert "hooks.example" in shown
    assert use_emulator.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "a fox", "-n", "2"],
        ["generate", "a fox", "-a", "16:9,1:1"],
        ["batch", "MANIFEST"],
    ],
)
def test_one_upload_url_for_several_images_is_refused_before_paying(
    use_emulator: Emulator, tmp_path: Path, args: list[str]
) -> None:
    """`--upload-to URL` with `-n 2`, two aspect ratios or a batch of two items: Runware PUTs
    each image to that one URL (a presigned PUT names one object), each over the last, and
    `generate` saves nothing here: one image of two reached the user, all paid."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"prompt": "a fox"}\n{"prompt": "a hen"}\n')
    args = [str(manifest) if arg == "MANIFEST" else arg for arg in args]
    target = "https://bucket.example/fox.png?X-Amz-Signature=s"
    result = run(*args, "-p", "runware", "--upload-to", target, "--json")
    assert result.returncode == 2, result.stdout
    assert "--upload-to" in result.stdout + result.stderr
    assert use_emulator.requests == []


def test_a_forged_delivery_is_repaired_by_kling_status(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """Anyone who can POST to the receiver can hand `kling ingest` a body naming a real task
    and an image URL of their own. No key goes there (downloads carry none off the
    provider's hosts), but the URL was kept beside the provider's: `kling status ID
    --download` saved the real image and left the job `generated` for good, a 1-image task
    with 2 outputs, one never to be fetched. A poll's answer is the provider's word: the
    unsaved URLs it does not list are dropped."""
    submitted = run("generate", "a fox", "-p", "runware", "--no-wait", "--json")
    job = json.loads(submitted.stdout)["job"]
    # Bound, never listening: refused, and no parallel worker's server can be handed the port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        forged_url = f"http://127.0.0.1:{probe.getsockname()[1]}/x.png"
        body = tmp_path / "forged.json"
        body.write_text(
            json.dumps(
                {"taskType": "imageInference", "taskUUID": job["task_id"], "imageURL": forged_url}
            )
        )
        forged = run("ingest", str(body), "--json")
    assert forged.returncode == 7, forged.stdout  # the download failed; the job is named
    time.sleep(0.6)  # the emulator's job is done
    repaired = run("status", job["id"], "--download", "--json")
    assert repaired.returncode == 0, repaired.stdout
    answer = json.loads(repaired.stdout)
    assert answer["job"]["state"] == "succeeded"
    assert forged_url not in answer["job"]["tasks"][0]["outputs"]
    assert len(answer["files"]) == 1
