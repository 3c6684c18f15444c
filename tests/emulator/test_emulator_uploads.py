"""The emulated upload routes, on the documented wire shapes (Unifically's storage docs,
https://unifically.gitbook.io/unifically-docs/storage; the fal-client 1.0.3 storage upload; and
WaveSpeed's media-upload docs, https://wavespeed.ai/docs-common-api/media-upload): what a client
sends, what it gets back, and that the file it names then serves the bytes that arrived."""

from __future__ import annotations

import base64

import httpx

from kling_cli.emulator import EMULATOR_API_KEY, Emulator
from tests.emulator.helpers import AUTH

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_unifically_storage_takes_multipart_and_base64_with_the_key(
    emu: Emulator, http: httpx.Client
) -> None:
    upload = emu.service_urls("unifically")["storage"] + "/upload"
    files = {"file": ("a.png", PNG, "image/png")}
    assert http.put(upload, files=files).status_code == 401
    stored = http.put(upload, files=files, headers=AUTH)
    assert stored.status_code == 200 and stored.json()["success"] is True
    as_json = http.put(
        upload,
        json={"base64": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        headers=AUTH,
    )
    assert as_json.json()["success"] is True
    for answer in (stored, as_json):
        assert http.get(answer.json()["file_url"]).content == PNG  # public, like a CDN
    refused = http.put(upload, json={"nothing": 1}, headers=AUTH)
    assert refused.status_code == 400 and refused.json()["success"] is False
    assert [f.content for f in emu.uploaded_files("unifically")] == [PNG, PNG]


def test_fal_initiate_gives_a_signed_put_and_the_file_url(
    emu: Emulator, http: httpx.Client
) -> None:
    initiate = emu.service_urls("fal")["rest"] + "/storage/upload/initiate?storage_type=gcs"
    body = {"file_name": "a.png", "content_type": "image/png"}
    assert http.post(initiate, json=body, headers=AUTH).status_code == 401  # fal wants `Key`
    answer = http.post(initiate, json=body, headers={"Authorization": f"Key {EMULATOR_API_KEY}"})
    assert answer.status_code == 200
    upload_url, file_url = answer.json()["upload_url"], answer.json()["file_url"]
    assert http.get(file_url).status_code == 404  # nothing arrived yet
    assert http.put(upload_url.split("?")[0] + "?signature=forged", content=PNG).status_code == 403
    assert (
        http.put(upload_url, content=PNG, headers={"Content-Type": "image/png"}).status_code == 200
    )
    assert http.get(file_url).content == PNG
    assert [f.filename for f in emu.uploaded_files("fal")] == ["a.png"]


def test_wavespeed_binary_upload_answers_in_its_envelope(emu: Emulator, http: httpx.Client) -> None:
    upload = emu.base_url("wavespeed") + "/api/v3/media/upload/binary"
    files = {"file": ("a.png", PNG, "image/png")}
    assert http.post(upload, files=files).status_code == 401
    assert http.post(upload, json={"file": "a.png"}, headers=AUTH).status_code == 400
    answer = http.post(upload, files=files, headers=AUTH).json()
    assert (answer["code"], answer["message"]) == (200, "success")
    assert answer["data"]["size"] == len(PNG) and answer["data"]["filename"] == "a.png"
    assert http.get(answer["data"]["download_url"]).content == PNG


def test_reset_forgets_uploads(emu: Emulator, http: httpx.Client) -> None:
    upload = emu.base_url("wavespeed") + "/api/v3/media/upload/binary"
    url = http.post(upload, files={"file": ("a.png", PNG, "image/png")}, headers=AUTH).json()
    emu.reset()
    assert emu.uploaded_files("wavespeed") == []
    assert http.get(url["data"]["download_url"]).status_code == 404


def test_a_submit_naming_an_upload_whose_bytes_never_arrived_is_refused(
    emu: Emulator, http: httpx.Client
) -> None:
    fal_key = {"Authorization": f"Key {EMULATOR_API_KEY}"}
    initiate = emu.service_urls("fal")["rest"] + "/storage/upload/initiate?storage_type=gcs"
    file = {"file_name": "a.png", "content_type": "image/png"}
    never_sent = http.post(initiate, json=file, headers=fal_key).json()["file_url"]  # no PUT
    body = {"prompt": "x", "image_urls": [never_sent]}
    refused = http.post(emu.base_url("fal") + "/fal-ai/kling-image/o1", json=body, headers=fal_key)
    assert refused.status_code == 422 and "Failed to download" in refused.text
    wavespeed = emu.base_url("wavespeed") + "/api/v3/kwaivgi/kling-image-o1"
    forged = never_sent.replace("/fal/", "/wavespeed/")
    answer = http.post(wavespeed, json={"prompt": "x", "images": [forged]}, headers=AUTH)
    assert answer.status_code == 400 and "cannot download" in answer.text
