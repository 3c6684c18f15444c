"""Local reference images: checked against the documented limits before any network call,
then sent inline the way each provider documents."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from PIL import Image

from kling_cli.emulator import Emulator, Fault
from kling_cli.emulator.media import MediaStore


def make_image(path: Path, size: tuple[int, int], fmt: str = "PNG", **options: object) -> Path:
    Image.new("RGB", size, (200, 80, 40)).save(path, fmt, **options)
    return path


@pytest.fixture
def hero(tmp_path: Path) -> Path:
    return make_image(tmp_path / "hero.png", (600, 800))


def refusal_cases(tmp_path: Path) -> list[tuple[str, str]]:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(make_image(tmp_path / "ok.png", (400, 400)).read_bytes()[:40])
    big = tmp_path / "big.png"
    noise = Image.frombytes("RGB", (2100, 2100), os.urandom(2100 * 2100 * 3))
    noise.save(big, "PNG", compress_level=0)
    return [
        (str(tmp_path / "missing.png"), "does not exist"),
        (str(tmp_path), "is a directory"),
        (str(text), "is not an image kling-cli can read"),
        (str(corrupt), "is not an image kling-cli can read"),
        (str(make_image(tmp_path / "small.png", (299, 600))), "each side must be at least 300 px"),
        (str(make_image(tmp_path / "pano.png", (300, 900))), "aspect ratio must be between 1:2.5"),
        (str(make_image(tmp_path / "hero.webp", (600, 600), "WEBP")), "is a WEBP image"),
        (str(big), "the limit is 10 MB"),
    ]


def test_every_broken_rule_is_one_sentence_and_no_request(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    for path, message in refusal_cases(tmp_path):
        result = run_cli("generate", "restyle @image_1", "-r", path, "-p", "runware")
        assert result.exit_code == 2, (path, result.stderr)
        assert message in result.stderr and path in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert use_emulator.requests == []


def test_runware_gets_the_files_bytes_as_data_uris_in_order(
    run_cli, use_emulator: Emulator, hero: Path, tmp_path: Path
) -> None:
    jacket = make_image(tmp_path / "jacket.jpg", (500, 500), "JPEG")
    url = "https://example.com/scene.png"
    result = run_cli(
        "generate",
        "@image_1 in @image_2 wearing @image_3",
        "-r",
        str(hero),
        "-r",
        url,
        "-r",
        str(jacket),
        "-p",
        "runware",
        "-a",
        "1:1",
    )
    assert result.exit_code == 0, result.stderr
    [task] = next(r for r in use_emulator.requests if r.server == "api").json()
    first, second, third = task["inputs"]["referenceImages"]
    assert first == "data:image/png;base64," + base64.b64encode(hero.read_bytes()).decode()
    assert second == url
    assert third == "data:image/jpeg;base64," + base64.b64encode(jacket.read_bytes()).decode()
    shown = run_cli("jobs", "show", run_cli("jobs", "--json").json()["jobs"][0]["id"], "--json")
    assert shown.json()["job"]["request"]["references"][0] == str(hero)  # the path, not bytes


@pytest.mark.parametrize("provider", ["kling", "comfy"])
def test_kling_and_comfy_get_raw_base64_without_a_data_prefix(
    run_cli, use_emulator: Emulator, hero: Path, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv("KLING_KLING_SECRET_KEY", "emulator-key")
    result = run_cli("generate", "restyle @image_1", "-r", str(hero), "-p", provider)
    assert result.exit_code == 0, result.stderr
    body = next(r for r in use_emulator.requests if r.server == "api" and r.method == "POST").json()
    assert body["image_list"][0]["image"] == base64.b64encode(hero.read_bytes()).decode()


def test_a_provider_without_an_upload_api_refuses_a_path(
    run_cli, use_emulator: Emulator, hero: Path
) -> None:
    result = run_cli("generate", "restyle @image_1", "-r", str(hero), "-p", "apiinone")
    assert result.exit_code == 2
    assert "has no upload API" in result.stderr and str(hero) in result.stderr
    assert use_emulator.requests == []


def submit_body(emu: Emulator, provider: str) -> dict:
    submit_paths = {
        "unifically": "/v1/tasks",
        "fal": "/fal-ai/kling-image/o1",
        "wavespeed": "/api/v3/kwaivgi/kling-image-o1",
        "inferencesh": "/apps/run",
    }
    [body] = [
        r.json()
        for r in emu.requests
        if r.provider == provider and r.method == "POST" and r.path == submit_paths[provider]
    ]
    return body


def sent_references(emu: Emulator, provider: str) -> list[str]:
    body = submit_body(emu, provider)
    return {
        "unifically": lambda: body["input"]["image_urls"],
        "fal": lambda: body["image_urls"],
        "wavespeed": lambda: body["images"],
        "inferencesh": lambda: [body["input"]["image"]],
    }[provider]()


@pytest.mark.parametrize("provider", ["unifically", "fal", "wavespeed", "inferencesh"])
def test_upload_providers_receive_the_files_bytes_and_use_the_address_they_gave(
    run_cli, use_emulator: Emulator, hero: Path, provider: str
) -> None:
    result = run_cli("generate", "restyle @image_1", "-r", str(hero), "-p", provider, "-a", "1:1")
    assert result.exit_code == 0, result.stderr
    [uploaded] = use_emulator.uploaded_files(provider)
    assert uploaded.content == hero.read_bytes()
    assert (uploaded.filename, uploaded.content_type) == ("hero.png", "image/png")
    [reference] = sent_references(use_emulator, provider)
    if provider == "inferencesh":
        assert reference == f"inf://files/{uploaded.file_id}/hero.png"
    else:  # the public address, never the signed upload URL
        mount = f"{use_emulator.api_origin}/{provider}"
        assert reference == MediaStore.url(uploaded, mount)
    assert f"uploading hero.png ({hero.stat().st_size:,} bytes)" in result.stderr


def test_signed_upload_urls_never_get_the_key(run_cli, use_emulator: Emulator, hero: Path) -> None:
    for provider in ("fal", "inferencesh"):
        result = run_cli("generate", "x @image_1", "-r", str(hero), "-p", provider, "-a", "1:1")
        assert result.exit_code == 0, result.stderr
        [put] = [r for r in use_emulator.requests if r.provider == provider and r.method == "PUT"]
        assert "signature=" in put.query
        assert "authorization" not in put.headers
        assert put.headers["content-type"] == "image/png"
        assert put.body == hero.read_bytes()


def test_urls_and_files_mixed_keep_their_order(
    run_cli, use_emulator: Emulator, hero: Path, tmp_path: Path
) -> None:
    jacket = make_image(tmp_path / "jacket.jpg", (500, 500), "JPEG")
    url = "https://example.com/scene.png"
    refs = ["-r", str(jacket), "-r", url, "-r", str(hero)]
    result = run_cli("generate", "@image_1 @image_2 @image_3", *refs, "-p", "unifically")
    assert result.exit_code == 0, result.stderr
    first, second, third = sent_references(use_emulator, "unifically")
    files = {f.filename: f for f in use_emulator.uploaded_files("unifically")}
    assert files["jacket.jpg"].content == jacket.read_bytes()
    assert files["jacket.jpg"].content_type == "image/jpeg"
    assert files["jacket.jpg"].file_id in first and second == url
    assert files["hero.png"].file_id in third


def test_a_file_is_uploaded_once_per_job(run_cli, use_emulator: Emulator, hero: Path) -> None:
    # -n 3 on a one-image-per-task provider is three tasks; the same file is also given twice.
    refs = ["-r", str(hero), "-r", str(hero)]
    result = run_cli("generate", "@image_1 and @image_2", *refs, "-p", "unifically", "-n", "3")
    assert result.exit_code == 0, result.stderr
    assert len(use_emulator.uploaded_files("unifically")) == 1
    assert len(result.stdout.split()) == 3


def test_a_batch_reusing_one_file_uploads_it_once_per_provider(
    run_cli, use_emulator: Emulator, hero: Path, tmp_path: Path
) -> None:
    import json

    items = [
        {
            "id": f"item{i}",
            "prompt": f"variation {i} of @image_1",
            "refs": [str(hero)],
            "provider": provider,
        }
        for i, provider in enumerate(["unifically", "wavespeed"] * 10)
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(item) + "\n" for item in items))
    result = run_cli("batch", str(manifest), "-o", "out", "-j", "8")
    assert result.exit_code == 0, result.stderr
    for provider in ("unifically", "wavespeed"):
        assert len(use_emulator.uploaded_files(provider)) == 1
        submits = [
            r for r in use_emulator.requests if r.provider == provider and r.method == "POST"
        ]
        assert sum(1 for r in submits if "upload" not in r.path) == 10


def test_a_failing_upload_is_retried_then_stops_before_any_submit(
    run_cli, use_emulator: Emulator, hero: Path
) -> None:
    use_emulator.inject("wavespeed", Fault(kind="server_error", on="upload", times=2))
    retried = run_cli("generate", "x @image_1", "-r", str(hero), "-p", "wavespeed")
    assert retried.exit_code == 0, retried.stderr
    assert "WaveSpeed answered HTTP 500; retrying" in retried.stderr
    use_emulator.reset()
    use_emulator.inject("wavespeed", Fault(kind="server_error", on="upload", times=20))
    failed = run_cli("generate", "x @image_1", "-r", str(hero), "-p", "wavespeed")
    assert failed.exit_code != 0
    assert f"Could not upload {hero} to WaveSpeed" in failed.stderr
    assert "Nothing was submitted" in failed.stderr
    assert [r.path for r in use_emulator.requests if "kling-image-o1" in r.path] == []


def test_the_key_goes_to_the_configured_storage_host_and_no_other() -> None:
    from kling_cli.engine import Engine
    from kling_cli.errors import ProviderRequestError
    from kling_cli.providers.base import Endpoint, HttpRequest
    from kling_cli.providers.unifically import Unifically

    storage = "https://files.storagecdn.online"
    endpoint = Endpoint("https://api.unifically.com", "sk-0123456789", None, {"storage": storage})
    engine = Engine(Unifically(), endpoint)
    keyed = {"Authorization": "Bearer sk-0123456789"}
    engine._check_key_destination(HttpRequest("PUT", f"{storage}/upload", keyed))
    for elsewhere in (
        "https://storagecdn.online.example/upload",
        "http://files.storagecdn.online/",
    ):
        with pytest.raises(ProviderRequestError, match="Refusing to send the Unifically key"):
            engine._check_key_destination(HttpRequest("PUT", elsewhere, keyed))
    # A signed URL carries no key, so it may point anywhere.
    engine._check_key_destination(HttpRequest("PUT", "https://bucket.example/x?sig=1", {}))


def test_dry_run_shows_sizes_not_bytes(run_cli, use_emulator: Emulator, hero: Path) -> None:
    result = run_cli(
        "generate", "restyle @image_1", "-r", str(hero), "-p", "runware", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.stderr
    [task] = result.json()["requests"][0]["body"]
    [shown] = task["inputs"]["referenceImages"]
    assert shown == f"<{hero}: PNG 600x800, {hero.stat().st_size:,} bytes, sent inline as data-uri>"
    assert use_emulator.requests == []


def inlined_image(emu: Emulator) -> Image.Image:
    import io

    [task] = next(r for r in emu.requests if r.server == "api").json()
    [uri] = task["inputs"]["referenceImages"]
    _, payload = uri.split(",", 1)
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    return image


def test_fit_converts_a_webp_to_png(run_cli, use_emulator: Emulator, tmp_path: Path) -> None:
    webp = make_image(tmp_path / "hero.webp", (640, 480), "WEBP")
    result = run_cli("generate", "restyle @image_1", "-r", str(webp), "-p", "runware", "--fit")
    assert result.exit_code == 0, result.stderr
    assert f"--fit: {webp}: converted WEBP to PNG" in result.stderr
    image = inlined_image(use_emulator)
    assert (image.format, image.size) == ("PNG", (640, 480))


def test_fit_upscales_a_small_side_keeping_the_aspect(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    small = make_image(tmp_path / "small.png", (200, 400))
    result = run_cli("generate", "restyle @image_1", "-r", str(small), "-p", "runware", "--fit")
    assert result.exit_code == 0, result.stderr
    assert "upscaled 200x400 to 300x600" in result.stderr
    assert inlined_image(use_emulator).size == (300, 600)


def test_fit_brings_an_oversize_file_under_the_limit(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    Image.frombytes("RGB", (2400, 1600), os.urandom(2400 * 1600 * 3)).save(big, compress_level=0)
    assert big.stat().st_size > 10 * 1024 * 1024
    result = run_cli("generate", "restyle @image_1", "-r", str(big), "-p", "runware", "--fit")
    assert result.exit_code == 0, result.stderr
    assert "converted PNG to JPEG" in result.stderr
    image = inlined_image(use_emulator)
    assert image.format == "JPEG"
    assert abs(image.width / image.height - 1.5) < 0.01


def test_fit_never_crops_and_never_touches_a_good_file(
    run_cli, use_emulator: Emulator, tmp_path: Path, hero: Path
) -> None:
    pano = make_image(tmp_path / "pano.png", (300, 900))
    refused = run_cli("generate", "restyle @image_1", "-r", str(pano), "-p", "runware", "--fit")
    assert refused.exit_code == 2 and "--fit never crops" in refused.stderr
    assert use_emulator.requests == []
    fine = run_cli("generate", "restyle @image_1", "-r", str(hero), "-p", "runware", "--fit")
    assert fine.exit_code == 0 and "--fit:" not in fine.stderr
    assert inlined_image(use_emulator).size == (600, 800)


def test_dry_run_says_a_file_would_be_uploaded(run_cli, use_emulator: Emulator, hero: Path) -> None:
    result = run_cli(
        "generate", "x @image_1", "-r", str(hero), "-p", "unifically", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.stderr
    [shown] = result.json()["requests"][0]["body"]["input"]["image_urls"]
    assert shown.startswith(f"<{hero}: PNG 600x800, {hero.stat().st_size:,} bytes, uploaded first")
    assert use_emulator.requests == [] and use_emulator.uploaded_files("unifically") == []


def test_aimlapi_gets_a_data_uri(run_cli, use_emulator: Emulator, hero: Path) -> None:
    result = run_cli("generate", "x @image_1", "-r", str(hero), "-p", "aimlapi", "-a", "1:1")
    assert result.exit_code == 0, result.stderr
    body = next(r for r in use_emulator.requests if r.method == "POST").json()
    assert body["image_urls"] == [
        "data:image/png;base64," + base64.b64encode(hero.read_bytes()).decode()
    ]


def test_fit_uploads_the_converted_file(run_cli, use_emulator: Emulator, tmp_path: Path) -> None:
    import io

    webp = make_image(tmp_path / "hero.webp", (640, 480), "WEBP")
    result = run_cli("generate", "x @image_1", "-r", str(webp), "-p", "wavespeed", "--fit")
    assert result.exit_code == 0, result.stderr
    [uploaded] = use_emulator.uploaded_files("wavespeed")
    assert uploaded.content_type == "image/png"
    assert Image.open(io.BytesIO(uploaded.content)).size == (640, 480)


def test_upload_refusals_name_the_file_and_the_reason_and_submit_nothing(
    run_cli, use_emulator: Emulator, hero: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unifically's storage refuses a wrong key with its own message; nothing is submitted.
    monkeypatch.setenv("KLING_UNIFICALLY_API_KEY", "wrong-key")
    refused = run_cli("generate", "x @image_1", "-r", str(hero), "-p", "unifically")
    assert refused.exit_code == 4, refused.stderr
    assert f"Could not upload {hero} to Unifically" in refused.stderr
    assert "Invalid API key provided" in refused.stderr
    assert not [r for r in use_emulator.requests if r.path == "/v1/tasks"]


def test_an_upload_address_that_is_not_https_is_never_used() -> None:
    from kling_cli.errors import UnreadableResponseError
    from kling_cli.providers.base import put_to_signed_url
    from kling_cli.providers.fal import Fal
    from kling_cli.references import LocalFile

    file = LocalFile(Path("a.png"), "image/png", b"png")
    for url in ("http://storage.example/x", "ftp://storage.example/x", None, 42):
        with pytest.raises(UnreadableResponseError, match="upload address"):
            next(put_to_signed_url(Fal(), url, file))
    assert next(put_to_signed_url(Fal(), "https://storage.example/x?sig=1", file)).headers == {
        "Content-Type": "image/png"
    }


def test_a_failed_upload_is_tried_again_by_the_next_job_of_a_batch(
    run_cli, use_emulator: Emulator, hero: Path, tmp_path: Path
) -> None:
    import json

    # Every attempt of the first upload fails; the next item uploads afresh and succeeds.
    use_emulator.inject("wavespeed", Fault(kind="server_error", on="upload", times=5))
    items = [{"id": f"i{n}", "prompt": "x @image_1", "refs": [str(hero)]} for n in range(2)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(item) + "\n" for item in items))
    result = run_cli("batch", str(manifest), "-p", "wavespeed", "-j", "1", "-o", "out", "--json")
    assert result.exit_code == 8, result.stderr
    assert len(use_emulator.uploaded_files("wavespeed")) == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    statuses = sorted(line["item"]["status"] for line in lines if "item" in line)
    assert statuses == ["failed", "succeeded"], lines


def test_the_upload_cache_retries_an_upload_whose_waiter_gave_up_before_it_failed() -> None:
    import asyncio

    from kling_cli.transport import UploadCache

    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        await asyncio.sleep(0.05)
        if len(attempts) == 1:
            raise RuntimeError("storage down")
        return "https://storage.example/a.png"

    async def scenario() -> str:
        cache = UploadCache()
        first = asyncio.ensure_future(cache.reference(("p", "a"), flaky))
        await asyncio.sleep(0.01)
        first.cancel()  # the only job waiting gives up; the upload goes on, then fails
        await asyncio.sleep(0.1)
        return await cache.reference(("p", "a"), flaky)

    assert asyncio.run(scenario()) == "https://storage.example/a.png"
    assert len(attempts) == 2


def test_a_signed_url_that_refuses_the_file_is_not_blamed_on_the_key(
    run_cli, use_emulator: Emulator, hero: Path
) -> None:
    # Five 503s: every attempt of the retry policy.
    use_emulator.inject("fal", Fault(kind="server_error", on="storage", status=503, times=5))
    result = run_cli("generate", "x @image_1", "-r", str(hero), "-p", "fal")
    assert result.exit_code == 1, result.stderr
    assert "the storage host refused the file (HTTP 503" in result.stderr
    assert "Check the key" not in result.stderr
    assert "Nothing was submitted, so nothing was charged." in result.stderr
    assert not [r for r in use_emulator.requests if r.path == "/fal-ai/kling-image/o1"]


def test_a_dropped_signed_put_is_sent_again(run_cli, use_emulator: Emulator, hero: Path) -> None:
    use_emulator.inject("inferencesh", Fault(kind="drop_connection", on="storage"))
    result = run_cli("generate", "x @image_1", "-r", str(hero), "-p", "inferencesh", "-a", "1:1")
    assert result.exit_code == 0, result.stderr
    puts = [r for r in use_emulator.requests if r.method == "PUT"]
    assert (
        len(puts) == 2
        and use_emulator.uploaded_files("inferencesh")[0].content == hero.read_bytes()
    )


def test_an_upload_that_cannot_connect_leaves_a_job_that_was_not_created(
    run_cli, use_emulator: Emulator, hero: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("KLING_FAL_REST_URL", f"http://127.0.0.1:{closed}")
    failed = run_cli("generate", "x @image_1", "-r", str(hero), "-p", "fal")
    assert f"Could not upload {hero} to fal.ai" in failed.stderr
    assert "Nothing was submitted" in failed.stderr
    job = run_cli("jobs", "--json").json()["jobs"][0]  # type: ignore[index]
    assert job["state"] == "not_created"
    status = run_cli("status", job["id"])
    assert "dashboard" not in status.stderr + status.stdout
    assert [r for r in use_emulator.requests if r.provider == "fal"] == []
