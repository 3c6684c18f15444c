"""Uploaded reference files, shared by every emulated provider that has an upload API.

Real providers keep uploads on storage hosts of their own (a CDN, a signed object-store URL).
The emulator keeps them on the API port, below each provider's mount, under `/_media/`: outside
every documented path. A file is stored in one request (`put`), or reserved first and filled by
a `PUT` to its signed URL without credentials (`reserve`, then `handle`). A `GET` of its URL
returns the bytes without credentials, like a public CDN, so tests can check what arrived.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs, quote

from kling_cli.emulator.server import Reply

MEDIA_PREFIX = "/_media/"


@dataclass
class MediaFile:
    provider: str
    file_id: str
    filename: str
    content_type: str
    signature: str
    content: bytes | None = None  # None until the signed PUT arrives

    @property
    def path(self) -> str:
        return f"{MEDIA_PREFIX}{self.file_id}/{quote(self.filename, safe='')}"


class MediaStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, MediaFile] = {}

    def reserve(self, provider: str, filename: str, content_type: str) -> MediaFile:
        file = MediaFile(provider, uuid.uuid4().hex, filename, content_type, secrets.token_hex(16))
        with self._lock:
            self._files[file.file_id] = file
        return file

    def put(self, provider: str, filename: str, content_type: str, content: bytes) -> MediaFile:
        file = self.reserve(provider, filename, content_type)
        with self._lock:
            file.content = content
        return file

    @staticmethod
    def url(file: MediaFile, mount_url: str) -> str:
        return f"{mount_url}{file.path}"

    @staticmethod
    def signed_url(file: MediaFile, mount_url: str) -> str:
        return f"{mount_url}{file.path}?signature={file.signature}"

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """`PUT` to the signed URL stores the bytes; `GET` of the URL gives them back."""
        with self._lock:
            file = self._files.get(path.removeprefix(MEDIA_PREFIX).partition("/")[0])
        if file is None or file.path != path:
            return _text_reply(404, "Not found")
        if method == "PUT":
            signature = parse_qs(query).get("signature", [""])[0]
            if not secrets.compare_digest(file.signature, signature):
                # inferred: object storage refuses a bad signature with 403.
                return _text_reply(403, "Signature does not match")
            if "authorization" in headers:
                # S3-style storage: "Only one auth mechanism allowed" (400).
                return _text_reply(400, "Only one auth mechanism allowed")
            sent_type = headers.get("content-type")
            if sent_type is not None and sent_type != file.content_type:
                # The content type is part of what was signed.
                return _text_reply(403, "Signature does not match (Content-Type)")
            with self._lock:
                file.content = body
            return Reply(200, b"", content_type="text/plain; charset=utf-8")
        if method in ("GET", "HEAD") and file.content is not None:
            return Reply(200, file.content, content_type=file.content_type)
        if method in ("GET", "HEAD"):
            return _text_reply(404, "Nothing was uploaded to this URL")
        return _text_reply(405, "Method not allowed")

    def first_missing(self, references: object) -> str | None:
        """The first of a submit's reference URLs that points into this store at a file whose
        bytes never arrived (the model could not fetch it), or None."""
        if not isinstance(references, list):
            return None
        for url in references:
            if not isinstance(url, str) or MEDIA_PREFIX not in url:
                continue
            path = MEDIA_PREFIX + url.split(MEDIA_PREFIX, 1)[1].split("?", 1)[0]
            file = self.find(path.removeprefix(MEDIA_PREFIX).partition("/")[0])
            if file is None or file.content is None or file.path != path:
                return url
        return None

    def find(self, file_id: str) -> MediaFile | None:
        with self._lock:
            return self._files.get(file_id)

    def received(self, provider: str) -> list[MediaFile]:
        """The files whose bytes have arrived for a provider, oldest first."""
        with self._lock:
            return [f for f in self._files.values() if f.provider == provider and f.content]

    def clear(self, provider: str) -> None:
        with self._lock:
            self._files = {k: f for k, f in self._files.items() if f.provider != provider}


def form_file(
    headers: Mapping[str, str], body: bytes, field: str = "file"
) -> tuple[str, str, bytes] | None:
    """The (file name, content type, bytes) of a `multipart/form-data` field, or None."""
    content_type = headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if (
            isinstance(part, Message)
            and part.get_param("name", header="content-disposition") == field
        ):
            content = part.get_payload(decode=True)
            if not isinstance(content, bytes):
                return None
            return part.get_filename() or field, part.get_content_type(), content
    return None


def _text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), content_type="text/plain; charset=utf-8")
