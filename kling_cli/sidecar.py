"""A JSON sidecar beside each saved image: how it was made, for people and pipelines."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli import __version__
from kling_cli.download import url_host
from kling_cli.errors import SaveError
from kling_cli.events import NullListener
from kling_cli.limits import expected_output_size

if TYPE_CHECKING:
    from kling_cli.attempts import Attempt
    from kling_cli.download import SavedFile
    from kling_cli.providers.base import TaskHandle, TaskStatus

MODEL_NAME = "Kling Image O1"
# Query parameters that make a URL a credential: S3/GCS presigned URLs (X-Amz-*, X-Goog-*),
# Azure SAS (sig, se, sp, sv, sr, st), CloudFront (Signature, Key-Pair-Id, Policy), tokens.
SIGNED_QUERY = re.compile(
    r"^(x-amz-|x-goog-|sig$|signature|se$|sp$|sv$|sr$|st$|skoid|sktid|key-pair-id|policy|"
    r"expires|token|access_token|auth|credential|key$|api_key|apikey|secret|password)",
    re.IGNORECASE,
)


def sidecar_path(image: Path) -> Path:
    return image.with_name(image.name + ".json")


class SidecarWriter(NullListener):
    """An engine listener that writes `<image>.json` as each image is saved. The source URL's
    host is kept, never the full URL: signed URLs carry tokens."""

    def __init__(
        self,
        job_id: str,
        provider: str,
        request: dict[str, Any],
        *,
        emulated: bool = False,
        attempts: list[Attempt] | None = None,
    ) -> None:
        self.job_id = job_id
        # The providers a routed job was sent to before the one that made the image.
        self.attempts = attempts
        self.emulated = emulated
        self.provider = provider
        self.request = request
        self.started = time.time()
        self._submitted_at: dict[str, float] = {}
        self._finished_at: dict[str, float] = {}
        self._status: dict[str, TaskStatus] = {}

    def submitted(self, task: TaskHandle) -> None:
        self._submitted_at[task.task_id] = time.time()

    def status_changed(self, task: TaskHandle, status: TaskStatus) -> None:
        self._status[task.task_id] = status
        if status.state.is_terminal:
            self._finished_at.setdefault(task.task_id, time.time())

    def saved(self, task: TaskHandle, file: SavedFile) -> None:
        status = self._status.get(task.task_id)
        seed = next((o.seed for o in status.outputs if o.url == file.url), None) if status else None
        parameters = {k: v for k, v in self.request.items() if k != "prompt"}
        if isinstance(parameters.get("references"), list | tuple):
            parameters["references"] = [public_url(ref) for ref in parameters["references"]]
        expected = expected_output_size(
            str(self.request.get("resolution")), str(self.request.get("aspect_ratio"))
        )
        document = {
            "prompt": self.request.get("prompt"),
            "parameters": parameters,
            "provider": self.provider,
            "model": MODEL_NAME,
            "job_id": self.job_id,
            "task_id": task.task_id,
            "seed": seed,
            "image": {
                "file": file.path.name,
                "width": file.width,
                "height": file.height,
                "bytes": file.bytes,
                "sha256": file.sha256,
                "source_host": url_host(file.url),
                # The documented size for the requested resolution and aspect ratio (null for
                # `auto`); size_mismatch: the image is not that size.
                "expected_width": expected[0] if expected else None,
                "expected_height": expected[1] if expected else None,
                "size_mismatch": bool(expected and expected != (file.width, file.height)),
            },
            # An emulator's made-up cost is no spend.
            "cost_usd": status.cost if status and not self.emulated else None,
            "emulated": self.emulated,
            "timings": {
                "started": _iso(self.started),
                "submitted": _iso(self._submitted_at.get(task.task_id)),
                "finished": _iso(self._finished_at.get(task.task_id)),
                "saved": _iso(time.time()),
            },
            "tool": f"kling-cli {__version__}",
        }
        ttl = self.request.get("url_ttl")
        submitted = self._submitted_at.get(task.task_id, self.started)
        if isinstance(ttl, int):
            # "Time-to-live (TTL) in seconds for generated content" (Runware's model page),
            # from a start it does not name: counted from the submit, the earliest it can be,
            # so the URL works at least until then.
            document["result_url_expires"] = _iso(submitted + ttl)
        if self.attempts is not None:
            document["attempts"] = [attempt.to_json() for attempt in self.attempts]
        target = sidecar_path(file.path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise SaveError(
                f"Saved {file.path.name}, but not its sidecar {target.name}: {exc.strerror}."
            ) from None


def public_url(reference: Any) -> Any:
    """A reference as it may be stored: a URL without user-info, and without its query string
    when any parameter looks like a signature or token; local paths unchanged."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    if not isinstance(reference, str) or not reference.lower().startswith(("http:", "https:")):
        return reference
    parts = urlsplit(reference)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    if any(SIGNED_QUERY.match(name) for name in names):
        query = ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
