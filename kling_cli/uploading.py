"""Reference uploads: a job's local reference files made into what its provider accepts.

A provider takes local files inlined (data URI or base64) or uploaded first to its own file
storage; an upload is made once per file, key and provider in a run (`HttpClients.uploads`),
and before the submit, so a failed upload never costs anything.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kling_cli.errors import InvalidRequestError, KlingError
from kling_cli.providers.base import INLINE_TRANSPORTS, redact_error

if TYPE_CHECKING:
    from kling_cli.references import LocalFile
    from kling_cli.request import GenerationRequest
    from kling_cli.sending import Sender


async def with_local_files(sender: Sender, request: GenerationRequest) -> GenerationRequest:
    """The request with each local reference inlined, or replaced by what its upload
    returned, in the order given."""
    from kling_cli.references import is_local, with_inline_references

    transport = sender.provider.capabilities.local_files
    if transport in INLINE_TRANSPORTS:
        return with_inline_references(request, transport)
    if transport != "upload" or not any(is_local(ref) for ref in request.references):
        return request
    references = [
        await _uploaded(sender, ref) if is_local(ref) else ref for ref in request.references
    ]
    return request.model_copy(update={"references": tuple(references)})


async def _uploaded(sender: Sender, reference: str) -> str:
    import hashlib

    from kling_cli.references import read_local_reference

    try:
        # Off the event loop: up to 10 MB read, checked and hashed per job.
        file = await asyncio.to_thread(read_local_reference, reference)
    except ValueError as exc:  # the file changed since the run was validated
        raise InvalidRequestError(str(exc)) from None
    account = hashlib.sha256(sender.endpoint.api_key.encode()).hexdigest()[:16]
    key = (sender.provider.id, sender.endpoint.base_url, account, file.sha256)
    return await sender.clients.uploads.reference(key, lambda: _upload(sender, file))


async def _upload(sender: Sender, file: LocalFile) -> str:
    provider = sender.provider
    sender.listener.uploading(file.name, len(file.content))
    steps = provider.upload(file, sender.endpoint)
    try:
        request = next(steps)
        while True:
            response = await sender.exchange(request, "upload failed", "submit")
            try:
                request = steps.send(response)
            except StopIteration as done:
                return str(done.value)
    except KlingError as exc:
        redact_error(exc, sender.secrets)
        exc.message = f"Could not upload {file.path} to {provider.name}: {exc.message}"
        exc.hint = exc.hint or "Nothing was submitted, so nothing was charged."
        raise
