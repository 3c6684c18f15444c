"""inference.sh file uploads as its SDK does them (providers-seeds.md §4.9): `POST /files`
registers files and answers FileDTOs with a signed `upload_url`; a `PUT` of the raw bytes to
that URL, without credentials, stores them; `inf://files/<id>/<name>` then names the file.

The real signed URL points at object storage on another host. The emulator's image origin
only serves generated images, so the emulated bucket lives on the API port under
`/<provider_id>/uploads/`, outside the documented paths. A `GET` of the same signed URL returns
the stored bytes: an emulator affordance, so tests can check what arrived.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from kling_cli.emulator.inferencesh_wire import INPUT_FILE_SCHEME, invalid_input
from kling_cli.emulator.server import Reply

UPLOADS_PREFIX = "/uploads/"
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass
class StoredFile:
    file_id: str
    filename: str
    content_type: str
    declared_size: int | None
    path: str | None
    signature: str
    content: bytes | None = None  # set by the PUT

    @property
    def uri(self) -> str:
        return f"{INPUT_FILE_SCHEME}{self.file_id}/{self.filename}"

    @property
    def upload_path(self) -> str:
        return f"{UPLOADS_PREFIX}{self.file_id}/{quote(self.filename, safe='')}"


class FileStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    def register(self, payload: Any, mount_url: str) -> list[dict[str, Any]]:
        """FileDTOs for a `POST /files` body (§4.9, I-sdk types.FileDTO)."""
        items = payload.get("files") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            raise invalid_input("files must be a non-empty array")
        stored = [_new_file(item) for item in items]
        with self._lock:
            self._files.update((file.file_id, file) for file in stored)
        return [_file_dto(file, mount_url) for file in stored]

    def upload(self, method: str, path: str, query: str, body: bytes) -> Reply:
        """The signed URL: `PUT` stores the bytes, `GET` gives them back. No credentials."""
        file = self._signed_file(path, query)
        if file is None:
            # inferred: object storage refuses a bad signature with 403 (§4.9 "signed S3-style").
            return _text_reply(403, "Signature does not match or the file is unknown")
        if method == "PUT":
            with self._lock:
                file.content = body
            return Reply(200, b"", content_type="text/plain; charset=utf-8")
        if method == "GET" and file.content is not None:
            return Reply(200, file.content, content_type=file.content_type)
        if method == "GET":
            return _text_reply(404, "Nothing was uploaded to this URL")
        return _text_reply(405, "Method not allowed")

    def uploaded(self, uri: str) -> bool:
        """Whether an inf:// URI names a file whose bytes have arrived."""
        file_id, _, filename = uri.removeprefix(INPUT_FILE_SCHEME).partition("/")
        with self._lock:
            file = self._files.get(file_id)
            return file is not None and file.filename == filename and file.content is not None

    def clear(self) -> None:
        with self._lock:
            self._files.clear()

    def _signed_file(self, path: str, query: str) -> StoredFile | None:
        file_id, _, _ = path.removeprefix(UPLOADS_PREFIX).partition("/")
        signature = parse_qs(query).get("signature", [""])[0]
        with self._lock:
            file = self._files.get(file_id)
        if file is None or file.upload_path != path:
            return None
        return file if secrets.compare_digest(file.signature, signature) else None


def _new_file(item: Any) -> StoredFile:
    # The SDK sends {uri, filename, content_type, path, size, public} per file (§4.9).
    if not isinstance(item, dict):
        raise invalid_input("every files entry must be an object")
    filename = item.get("filename")
    if not isinstance(filename, str) or not filename or "/" in filename:
        raise invalid_input("every files entry needs a filename without '/'")
    content_type = item.get("content_type") or DEFAULT_CONTENT_TYPE
    size = item.get("size")
    path = item.get("path")
    if not isinstance(content_type, str):
        raise invalid_input("files[].content_type must be a string")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise invalid_input("files[].size must be a non-negative integer")
    if path is not None and not isinstance(path, str):
        raise invalid_input("files[].path must be a string or null")
    return StoredFile(
        file_id=uuid.uuid4().hex,
        filename=filename,
        content_type=content_type,
        declared_size=size,
        path=path,
        signature=secrets.token_hex(16),
    )


def _file_dto(file: StoredFile, mount_url: str) -> dict[str, Any]:
    return {
        "id": file.file_id,
        "uri": file.uri,
        "upload_url": f"{mount_url}{file.upload_path}?signature={file.signature}",
        "content_type": file.content_type,
        "size": file.declared_size,
        "filename": file.filename,
        "path": file.path,
        # inferred: the values of these FileDTO fields are NOT FOUND (§4.9).
        "remote_path": f"files/{file.file_id}/{file.filename}",
        "category": None,
        "metadata": None,
    }


def _text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), content_type="text/plain; charset=utf-8")
