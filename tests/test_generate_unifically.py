"""Unifically end to end against the emulator: `POST /v1/tasks` with the documented body
(https://unifically.com/models/kling-o1-image), `GET /v1/tasks/{task_id}` until `completed`, then
the PNG."""

from __future__ import annotations

from PIL import Image

from kling_cli.emulator import EMULATOR_API_KEY, Emulator


def test_submit_poll_download(run_cli, use_emulator: Emulator) -> None:
    prompt = "A serene mountain landscape at sunset, photorealistic"
    result = run_cli("generate", prompt, "-p", "unifically", "-a", "16:9", "-R", "2k")
    assert result.exit_code == 0, result.stderr

    api = [r for r in use_emulator.requests if r.server == "api"]
    submit, *polls = api
    assert (submit.method, submit.path) == ("POST", "/v1/tasks")
    assert submit.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    # Field for field the documented curl example (Unifically's model page).
    assert submit.json() == {
        "model": "kuaishou/kling-o1-image",
        "input": {"prompt": prompt, "aspect_ratio": "16:9", "resolution": "2k"},
    }
    task_id = submit_task_id = None
    for poll in polls:
        assert poll.method == "GET"
        assert poll.path.startswith("/v1/tasks/")
        task_id = poll.path.rsplit("/", 1)[1]
        submit_task_id = submit_task_id or task_id
        assert task_id == submit_task_id
        assert poll.headers["authorization"] == f"Bearer {EMULATOR_API_KEY}"
    assert polls

    [path] = result.stdout.split()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (2720, 1536)
    images = [r for r in use_emulator.requests if r.server == "images"]
    assert images and all("authorization" not in r.headers for r in images)


def test_references_go_in_image_urls(run_cli, use_emulator: Emulator) -> None:
    refs = ["https://example.com/a.png", "https://example.com/b.png"]
    result = run_cli(
        "generate", "@image_1 meets @image_2", "-r", refs[0], "-r", refs[1], "-p", "unifically"
    )
    assert result.exit_code == 0, result.stderr
    body = next(r for r in use_emulator.requests if r.server == "api").json()
    assert body["input"]["image_urls"] == refs
    assert body["input"]["aspect_ratio"] == "auto"


def test_several_images_fan_out_over_several_tasks(run_cli, use_emulator: Emulator) -> None:
    # No image-count field is documented for Unifically: `-n 3` is three tasks of one image.
    result = run_cli("generate", "a red fox", "-p", "unifically", "-n", "3", "--json")
    assert result.exit_code == 0, result.stderr
    body = result.json()
    submits = [r for r in use_emulator.requests if r.server == "api" and r.method == "POST"]
    assert len(submits) == 3
    assert all(
        "n" not in r.json()["input"] and "num_images" not in r.json()["input"] for r in submits
    )
    assert len(body["job"]["task_ids"]) == 3 and len(set(body["job"]["task_ids"])) == 3
    assert len(body["files"]) == 3 and len({f["path"] for f in body["files"]}) == 3
