"""Kling AI's official API for Kling Image O1. Sources: Kling's Omni-Image API reference
(https://kling.ai/document-api/api/image/o1/image-generation) and its general docs as copied in
github.com/inference-sh/grid (`api/klingai/docs/00-general.md`).

Base URL `https://api-singapore.klingai.com` (API reference) maps to the mount itself
(base_path "").
`POST /v1/images/omni-image` submits, `GET /v1/images/omni-image/{task_id or
external_task_id}` queries one task, `GET /v1/images/omni-image?pageNum=&pageSize=` lists
them. Requests carry `Authorization: Bearer <JWT>` signed HS256 with the secret key and
`iss` = the access key (general docs); the emulator's api_key serves as both keys. Every answer is
`{"code", "message", "request_id"[, "data"]}` with the business code of the general docs' table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from kling_cli.emulator.body_fields import Invalid, parse_json
from kling_cli.emulator.faults import Phase
from kling_cli.emulator.kling_native import (
    KlingJob,
    KlingOrder,
    Refused,
    envelope,
    new_task_id,
    read_order,
    submitted_data,
    task_data,
)
from kling_cli.emulator.provider import ProviderApi, ProviderContext, ProviderRequest
from kling_cli.emulator.provider_kit import issue_images
from kling_cli.emulator.server import Reply, json_reply
from kling_cli.emulator.tasks import Task

OMNI_IMAGE_PATH = "/v1/images/omni-image"
PAGE_NUMBERS = range(1, 1001)  # API reference list endpoint: pageNum [1, 1000]
PAGE_SIZES = range(1, 501)  # pageSize [1, 500]
DEFAULT_PAGE_SIZE = 30

# General docs: (HTTP status, business code). Messages are the table's meanings; only the 1303
# and 1004 texts are documented examples ("parallel task over resource pack limit",
# "Authorization is expired"); the others are inferred from the table's wording.
AUTH_FAILED = (401, 1000, "Authentication failed")
AUTH_MISSING = (401, 1001, "Authorization is empty")
AUTH_INVALID = (401, 1002, "Authorization is invalid")
AUTH_NOT_YET_VALID = (401, 1003, "Authorization is not yet valid")
AUTH_EXPIRED = (401, 1004, "Authorization is expired")
ACCOUNT_EXCEPTION = (429, 1100, "Account exception")
ACCOUNT_ARREARS = (429, 1101, "Account in arrears")
NO_RESOURCE_PACK = (429, 1102, "Resource pack exhausted or expired")
NO_PERMISSION = (403, 1103, "No permission to access this resource")
INVALID_REQUEST = (400, 1200, "Invalid request parameters")
INVALID_PARAMETER = (400, 1201, "Invalid parameter")
INVALID_METHOD = (404, 1202, "Invalid request method")
NOT_FOUND = (404, 1203, "Requested resource does not exist")
RATE_LIMITED = (429, 1302, "Request rate is too high")
PARALLEL_OVER_LIMIT = (429, 1303, "parallel task over resource pack limit")
SERVER_ERRORS: dict[int, tuple[int, int, str]] = {
    500: (500, 5000, "Server internal error"),
    503: (503, 5001, "Server temporarily unavailable, usually due to maintenance"),
    504: (504, 5002, "Server internal timeout, usually due to a backlog"),
}

KlingError = tuple[int, int, str]


def error_reply(error: KlingError, detail: str | None = None) -> Reply:
    """The documented error body `{"code", "message", "request_id"}` (general docs)."""
    status, code, message = error
    text = f"{message}: {detail}" if detail else message
    return json_reply(status, {"code": code, "message": text, "request_id": str(uuid.uuid4())})


class _Unauthorized(Exception):
    def __init__(self, error: KlingError) -> None:
        super().__init__(error[2])
        self.error = error


def check_jwt(authorization: str | None, access_key: str, secret_key: str) -> None:
    """General docs: `Bearer <JWT>`, header alg HS256, `iss` = access key, signed with the
    secret key, `exp` in the future and `nbf` (when present) in the past. Raises _Unauthorized."""
    if not authorization:
        raise _Unauthorized(AUTH_MISSING)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token or token != token.strip():
        raise _Unauthorized(AUTH_INVALID)  # "one space" (general docs)
    parts = token.split(".")
    if len(parts) != 3:
        raise _Unauthorized(AUTH_INVALID)
    header, claims, signature = (_b64url_json(parts[0]), _b64url_json(parts[1]), parts[2])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _Unauthorized(AUTH_INVALID)
    if header.get("alg") != "HS256":
        raise _Unauthorized(AUTH_INVALID)
    expected = hmac.new(
        secret_key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(_b64url(expected), signature):
        raise _Unauthorized(AUTH_FAILED)  # signed with another secret key
    if claims.get("iss") != access_key:
        raise _Unauthorized(AUTH_FAILED)  # an unknown access key
    exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf"))
    # inferred: a token without a numeric exp is malformed; nbf is optional as in any JWT,
    # though the official sample always sends it (now - 5 s).
    if exp is None or (nbf is None and claims.get("nbf") is not None):
        raise _Unauthorized(AUTH_INVALID)
    now = time.time()
    if nbf is not None and now < nbf:
        raise _Unauthorized(AUTH_NOT_YET_VALID)
    if now >= exp:
        raise _Unauthorized(AUTH_EXPIRED)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_json(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        return None


class KlingApi(ProviderApi[KlingJob]):
    provider_id = "kling"
    base_path = ""  # https://api-singapore.klingai.com -> the mount; paths are /v1/images/...

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self._lock = threading.Lock()
        self._order: list[str] = []  # task ids, oldest first, for the list endpoint
        self._by_external_id: dict[str, str] = {}

    # -- ProviderApi -------------------------------------------------------------------------

    def phase_of(self, request: ProviderRequest) -> Phase | None:
        if request.path == OMNI_IMAGE_PATH and request.method == "POST":
            return "submit"
        if request.method == "GET" and (
            request.path == OMNI_IMAGE_PATH or _task_ref_in(request.path) is not None
        ):
            return "poll"
        return None

    def rate_limited(self, request: ProviderRequest) -> Reply:
        # 429 is shared with the billing codes 1100-1102; a rate limit is 1302 (general docs).
        return error_reply(RATE_LIMITED)

    def server_error(self, request: ProviderRequest, status: int) -> Reply:
        _, code, message = SERVER_ERRORS.get(status, SERVER_ERRORS[500])
        return error_reply((status, code, message))

    def out_of_credits(self, request: ProviderRequest) -> Reply:
        # Also a 429, told apart from a rate limit only by the body's code (general docs).
        return error_reply(NO_RESOURCE_PACK)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._order.clear()
            self._by_external_id.clear()

    def handle(self, request: ProviderRequest) -> Reply:
        key = self.api_key
        try:
            check_jwt(request.headers.get("authorization"), access_key=key, secret_key=key)
        except _Unauthorized as unauthorized:
            return error_reply(unauthorized.error)
        if request.path == OMNI_IMAGE_PATH:
            if request.method == "POST":
                return self._submit(request)
            if request.method == "GET":
                return self._list(request)
        task_ref = _task_ref_in(request.path)
        if task_ref is not None and request.method == "GET":
            return self._query(task_ref)
        # inferred: 1202 "invalid method" for a route the API does not have
        return error_reply(INVALID_METHOD, f"{request.method} {request.path}")

    # -- routes ------------------------------------------------------------------------------

    def _submit(self, request: ProviderRequest) -> Reply:
        try:
            order = read_order(parse_json(request.body))
        except Invalid as invalid:
            first = invalid.problems[0]
            if first.type in ("json_invalid", "dict_type") and not first.loc:
                return error_reply(INVALID_REQUEST, "the body must be a JSON object")
            return error_reply(INVALID_PARAMETER, first.sentence())
        except Refused as refused:
            return error_reply(INVALID_PARAMETER, refused.message)
        with self._lock:
            if order.external_task_id is not None and (
                order.external_task_id in self._by_external_id
            ):
                # "must be unique per account" (API reference); the code for a clash is
                # not documented (inferred: 1201 like any invalid value).
                return error_reply(
                    INVALID_PARAMETER,
                    f"external_task_id {order.external_task_id} already exists",
                )
            task = self._create(order)
        return json_reply(200, envelope(submitted_data(task)))

    def _create(self, order: KlingOrder) -> Task[KlingJob]:
        """Called with the lock held, so external ids stay unique under concurrent submits."""
        store = self.context.images
        job = KlingJob(
            order=order,
            images=issue_images(store, order.spec, order.n, self.provider_id, order.caption),
            watermarked=issue_images(
                store,
                order.spec,
                order.n if order.watermark else 0,
                self.provider_id,
                order.caption,
            ),
        )
        task_id = new_task_id()
        task = self.tasks.create(
            task_id, self.context.settings.latency, self.claim_task_failure(), job
        )
        self._order.append(task_id)
        # The callback protocol's flat body: the query answer's `data` without the envelope
        # (kling.ai/document-api callback protocol). Sent when the task ends; the protocol
        # also calls on intermediate changes, which a client that polls does not need.
        self.notify_when_done(
            order.callback_url, task, lambda: [task_data(task, self.context.images)]
        )
        if order.external_task_id is not None:
            self._by_external_id[order.external_task_id] = task_id
        return task

    def _query(self, task_ref: str) -> Reply:
        # "task_id or external_task_id, choose one of the two" (API reference)
        task = self.tasks.get(task_ref)
        if task is None:
            with self._lock:
                task_id = self._by_external_id.get(task_ref)
            task = self.tasks.get(task_id) if task_id is not None else None
        if task is None:
            # Not documented for an unknown id (inferred: 1203 "resource does not exist").
            return error_reply(NOT_FOUND, f"task {task_ref} does not exist")
        return json_reply(200, envelope(task_data(task, self.context.images)))

    def _list(self, request: ProviderRequest) -> Reply:
        query = parse_qs(request.query)
        page_number = _page_parameter(query, "pageNum", 1, PAGE_NUMBERS)
        page_size = _page_parameter(query, "pageSize", DEFAULT_PAGE_SIZE, PAGE_SIZES)
        if page_number is None or page_size is None:
            return error_reply(
                INVALID_PARAMETER, "pageNum must be in [1, 1000] and pageSize in [1, 500]"
            )
        with self._lock:
            newest_first = list(reversed(self._order))  # inferred: no order documented
        start = (page_number - 1) * page_size
        tasks = [self.tasks.get(task_id) for task_id in newest_first[start : start + page_size]]
        data = [task_data(task, self.context.images) for task in tasks if task is not None]
        return json_reply(200, envelope(data))


def _task_ref_in(path: str) -> str | None:
    prefix = OMNI_IMAGE_PATH + "/"
    if not path.startswith(prefix):
        return None
    ref = path[len(prefix) :]
    return ref if ref and "/" not in ref else None


def _page_parameter(
    query: dict[str, list[str]], name: str, default: int, allowed: range
) -> int | None:
    values = query.get(name)
    if not values:
        return default
    try:
        value = int(values[0])
    except ValueError:
        return None
    return value if value in allowed else None
