"""inference.sh file uploads as its SDK does them (PyPI inferencesh 0.36.0, `upload_file`,
types.FileDTO): `POST /files`
registers files and answers FileDTOs with a signed `upload_url`; a `PUT` of the raw bytes to
that URL, without credentials, stores them; `inf://files/<id>/<name>` then names the file.

The real signed URL points at object storage on another host; the emulated bucket is the
shared media store (media.py), on the API port under `/<provider_id>/_media/`, outside the
documented paths. A `GET` of the same URL returns the stored bytes, so tests can check what
arrived.
"""

from __future__ import annotations

from typing import Any

from kling_cli.emulator.inferencesh_wire import INPUT_FILE_SCHEME, invalid_input
from kling_cli.emulator.media import MediaFile, MediaStore

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class FileStore:
    """inference.sh's file registry over the emulator's shared media store."""

    def __init__(self, media: MediaStore, provider_id: str) -> None:
        self.media = media
        self.provider_id = provider_id

    def register(self, payload: Any, mount_url: str) -> list[dict[str, Any]]:
        """FileDTOs for a `POST /files` body (SDK types.FileDTO)."""
        items = payload.get("files") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            raise invalid_input("files must be a non-empty array")
        checked = [_checked_item(item) for item in items]
        return [
            _file_dto(self.media.reserve(self.provider_id, name, kind), size, path, mount_url)
            for name, kind, size, path in checked
        ]

    def uploaded(self, uri: str) -> bool:
        """Whether an inf:// URI names a file whose bytes have arrived."""
        file_id, _, filename = uri.removeprefix(INPUT_FILE_SCHEME).partition("/")
        file = self.media.find(file_id)
        return file is not None and file.filename == filename and file.content is not None

    def clear(self) -> None:
        self.media.clear(self.provider_id)


def _checked_item(item: Any) -> tuple[str, str, int | None, str | None]:
    # The SDK sends {uri, filename, content_type, path, size, public} per file (SDK `upload_file`).
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
    return filename, content_type, size, path


def _file_dto(
    file: MediaFile, declared_size: int | None, path: str | None, mount_url: str
) -> dict[str, Any]:
    return {
        "id": file.file_id,
        "uri": f"{INPUT_FILE_SCHEME}{file.file_id}/{file.filename}",
        "upload_url": MediaStore.signed_url(file, mount_url),
        "content_type": file.content_type,
        "size": declared_size,
        "filename": file.filename,
        "path": path,
        # inferred: the values of these FileDTO fields are undocumented.
        "remote_path": f"files/{file.file_id}/{file.filename}",
        "category": None,
        "metadata": None,
    }
