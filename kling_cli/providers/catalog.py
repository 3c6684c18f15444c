"""What each provider is, offers and costs, without its wire code: everything `kling providers`
and `kling config` show, importable without loading the nine adapters. Each adapter subclasses its
entry here (`class Runware(RunwareInfo, Provider)`), so these are the only copies of the facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from kling_cli.limits import ASPECT_RATIOS
from kling_cli.providers.info import Capabilities as Capabilities
from kling_cli.providers.info import LocalFileTransport as LocalFileTransport
from kling_cli.providers.info import Price as Price
from kling_cli.providers.info import ProviderInfo as ProviderInfo


class RunwareInfo(ProviderInfo):
    """Sources: the model page (`docs_url`), rate-limit docs
    (https://runware.ai/docs/platform/rate-limits) and Runware's integration notes
    (github.com/Runware/runware-skills, `migrate/integrate-with-runware/SKILL.md`)."""

    id = "runware"
    resume = "resumed by our taskUUID (getResponse), even after an unanswered sync hold"
    name = "Runware"
    default_base_url = "https://api.runware.ai/v1"
    key_env_vars = ("RUNWARE_API_KEY",)
    docs_url = "https://runware.ai/docs/models/klingai-image-o1"
    capabilities = Capabilities(
        # Local files go inline: "UUID, URL, Data URI, or Base64" (model page).
        local_files="data-uri",
        max_references=10,
        max_images=9,
        # "Either provide inputs.referenceImages, or specify width/height" (model page): without
        # references there is no size to follow, so `auto` needs at least one.
        auto_aspect_needs_references=True,
        min_prompt_chars=3,  # positivePrompt "min 3" (model page)
        output_formats=("png", "jpeg", "webp"),
        push=("sync",),
        # taskUUID is ours (model page); getResponse finds it (task polling docs).
        client_task_id_lookup=True,
        # The model page, and runware.ai/docs/platform/webhooks.
        webhook="webhookURL",
        output_quality=True,
        upload_to=True,
        safety=True,
        url_ttl=True,
    )
    price = Price(usd_per_image=0.028, source="runware.ai model page", as_of="2025-12")
    # Advice, not a limit: "no hard rate limits", 429 when the queue is full (rate-limit docs), and
    # "keep steady-state concurrency in the low single digits (2-4)" (integration notes).
    # Start at the top of that range; accepted submits raise it up to --concurrency.
    initial_concurrency = 4
    adapter = "kling_cli.providers.runware:Runware"


class UnificallyInfo(ProviderInfo):
    """Sources: the Kling O1 Image page (`docs_url`), the O1 video docs
    (https://docs.unifically.com/models/video/kling/kling-o1-video) and the storage docs
    (https://unifically.gitbook.io/unifically-docs/storage)."""

    id = "unifically"
    name = "Unifically"
    default_base_url = "https://api.unifically.com"
    # Unifically documents no variable; this is the name its third-party clients use.
    key_env_vars = ("UNIFICALLY_API_KEY",)
    docs_url = "https://unifically.com/models/kling-o1-image"
    # The storage host takes the same key (storage docs).
    service_urls: ClassVar[Mapping[str, str]] = {"storage": "https://files.storagecdn.online"}
    capabilities = Capabilities(
        # References are URLs only (O1 video docs): local files go to its storage first
        # (storage docs).
        local_files="upload",
        max_references=10,
        # No image-count field is documented for this model: one image per task.
        max_images=1,
        # The output format is not selectable (undocumented).
        output_formats=(),
        # Top level, outside `input` (docs.unifically.com/api-reference/callbacks).
        webhook="callback_url",
    )
    # Not published for this model; Kling O1's list price elsewhere is $0.028 per image.
    price = Price(usd_per_image=0.028, source="not published; Kling O1 list price", as_of="2026-11")
    adapter = "kling_cli.providers.unifically:Unifically"


class ApiInOneInfo(ProviderInfo):
    """Sources: the Kling Image O1 API page (`docs_url`) and the API docs
    (https://apiin.one/docs)."""

    id = "apiinone"
    name = "API in One"
    default_base_url = "https://apiin.one/api/v1"
    # API in One documents no environment variable for its key (API docs); this name is ours.
    key_env_vars = ("APIINONE_API_KEY",)
    docs_url = "https://apiin.one/models/kling-image-o1"
    capabilities = Capabilities(
        max_references=10,
        max_images=9,  # `num_images` 1-9 (model page)
        modes=("default", "multi-shot"),
        # Output format and negative prompt: not in the model's parameters (model page).
        output_formats=(),
        # "configure callback_url on supported routes" (apiin.one/es/docs); whether this
        # route is one is not said, so it is sent and status polling still works without it.
        webhook="callback_url",
    )
    # Model page: "Image-to-image mode costs 6 credits per request" (~$0.012); multi-shot 16
    # (~$0.032). Billed per request, not per image: this is the price of a one-image request,
    # and an upper bound per image when a request asks for several.
    price = Price(
        usd_per_image=0.012,
        source="apiin.one model page: 6 credits ≈ $0.012 per request",
        as_of="2026-11",
    )
    adapter = "kling_cli.providers.apiinone:ApiInOne"


# inference.sh's `aspect_ratio` enum, in its order; it has no `auto` (the app's input schema,
# github.com/inference-sh/grid `api/klingai/video/image-o1/input_schema.json`).
INFERENCESH_ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")


class InferenceShInfo(ProviderInfo):
    """Sources: the app page (`docs_url`), the app's source (github.com/inference-sh/grid,
    `api/klingai/video/image-o1/`) and the official SDK (PyPI inferencesh 0.36)."""

    id = "inferencesh"
    name = "inference.sh"
    default_base_url = "https://api.inference.sh"
    key_env_vars = ("INFERENCE_API_KEY",)  # app page
    docs_url = "https://inference.sh/apps/klingai/image-o1"
    capabilities = Capabilities(
        # `input.image` is one file (app source): a URL, or an uploaded file's inf:// URI (SDK).
        local_files="upload",
        max_references=1,
        # The app downloads only the first of Kling's images but bills for `n` (app source): each
        # task asks for one, and `-n` is fanned out over tasks.
        max_images=1,
        aspect_ratios=INFERENCESH_ASPECT_RATIOS,
        # In the app's input schema, but its published source does not forward it to Kling
        # (app source): it is sent, and may have no effect.
        negative_prompt=True,
        push=("stream",),
        # The app always saves a `.png`, whatever Kling made (app source).
        output_formats=(),
        # `webhook` in the run body (inference.sh app page; /docs/api/running-apps).
        webhook="webhook",
    )
    price = Price(usd_per_image=0.028, source="inference.sh app page", as_of="2026-11")
    adapter = "kling_cli.providers.inferencesh:InferenceSh"


class KlingInfo(ProviderInfo):
    """Sources: Kling's Omni-Image API reference (`docs_url`) and its general docs as copied in
    github.com/inference-sh/grid (`api/klingai/docs/00-general.md`) and github.com/WHQ25/rawgenai
    (`docs/research/kling/common-info.md`)."""

    id = "kling"
    resume = "resumed by our external_task_id, even after an unanswered submit"
    name = "Kling"
    # The international console's host; China-console keys need https://api-beijing.klingai.com
    # through the base URL setting (common-info.md).
    default_base_url = "https://api-singapore.klingai.com"
    key_env_vars = ("KLING_ACCESS_KEY",)
    secret_env_vars = ("KLING_SECRET_KEY",)
    docs_url = "https://kling.ai/document-api/api/image/o1/image-generation"
    capabilities = Capabilities(
        # Local files go inline: raw base64 without a data: prefix (00-general.md, "Base64 Format").
        local_files="inline-base64",
        max_references=10,  # image_list + element_list ≤ 10 (API reference)
        max_images=9,  # n in [1, 9] (API reference)
        # No output format field on this route (API reference): the model returns what it returns.
        output_formats=(),
        # No negative_prompt on this route (API reference).
        negative_prompt=False,
        # external_task_id is ours, and the query route takes it instead of task_id (API reference).
        client_task_id_lookup=True,
        webhook="callback_url",  # kling.ai/document-api callback protocol
    )
    # Kling publishes prices in resource-pack units (`final_unit_deduction`), not dollars;
    # this is the per-image price of the resellers that pass it on (fal, WaveSpeed;
    # third-party catalogs).
    price = Price(
        usd_per_image=0.028,
        source="not published in USD by Kling; resellers' Kling O1 list price",
        as_of="2026-11",
    )
    # No number to start from: concurrency is per account and resource pack, and an image task
    # holds n slots until it ends (00-general.md). Its 429 code 1303 halves a batch's cap instead.
    initial_concurrency = None
    adapter = "kling_cli.providers.kling:Kling"


class FalInfo(ProviderInfo):
    """Sources: the model API page (`docs_url`), its schema in @fal-ai/client 1.10.1
    (`src/types/endpoints.d.ts`) and the official client (PyPI fal-client 1.0.3, `client.py`)."""

    id = "fal"
    resume = "resumed by the request id its submit answered with (results kept ~1 h)"
    name = "fal.ai"
    default_base_url = "https://queue.fal.run"
    key_env_vars = ("FAL_KEY",)  # the variable fal's own clients read (fal-client)
    docs_url = "https://fal.ai/models/fal-ai/kling-image/o1/api"
    # fal's REST host, where storage uploads begin (fal-client `client.py`).
    service_urls: ClassVar[Mapping[str, str]] = {"rest": "https://rest.fal.ai"}
    capabilities = Capabilities(
        # Through fal storage (fal-client): fal documents data URIs for file inputs in general but
        # not for this endpoint, and an uploaded file keeps a 10 MB reference out of every submit.
        local_files="upload",
        min_references=1,  # image_urls is required (model page)
        max_references=10,  # image_urls max 10, elements included (model page)
        max_images=9,  # num_images 1-9 (model page)
        output_formats=("png", "jpeg", "webp"),  # output_format (model page)
        negative_prompt=False,  # no such field (model page)
        webhook="?fal_webhook=",  # a query parameter of the submit (fal docs, webhooks)
    )
    price = Price(
        usd_per_image=0.028,
        source="fal.ai via third-party catalogs ($0.027-0.028)",
        as_of="2026-11",
    )
    # fal runs 2 to 40 requests at once per account, by credit bought, but queues the rest:
    # "Requests are never rejected due to concurrency limits" (fal docs, "Concurrency limits"
    # and FAQ). Holding items back here would only delay their place in that queue.
    initial_concurrency = None
    adapter = "kling_cli.providers.fal:Fal"


class WaveSpeedInfo(ProviderInfo):
    """Sources: the model page (`docs_url`, and its `llms.txt`), the official SDK (PyPI wavespeed
    2.0.5) and the media-upload docs (https://wavespeed.ai/docs-common-api/media-upload)."""

    id = "wavespeed"
    name = "WaveSpeed"
    default_base_url = "https://api.wavespeed.ai"
    key_env_vars = ("WAVESPEED_API_KEY",)  # the official SDK's variable
    docs_url = "https://wavespeed.ai/models/kwaivgi/kling-image-o1"
    capabilities = Capabilities(
        # References are URLs (model page): local files go through the media upload API.
        local_files="upload",
        max_references=10,  # images "max 10" (model page)
        # num_images 1-9 is inferred from resellers of this endpoint, not WaveSpeed's page.
        max_images=9,
        # output_format is unconfirmed for this model (not on its page): not offered.
        output_formats=(),
        negative_prompt=False,
        # wavespeed.ai/docs/how-to-use-webhooks puts it in the query; the submit-task page
        # also lists a body `webhook_url`. The guide's form is sent, not both (two deliveries).
        webhook="?webhook=",
    )
    price = Price(
        usd_per_image=0.028,
        source="third-party comparison of fal and WaveSpeed",
        as_of="2026-11",
    )
    # The entry tier (Bronze) allows 3 tasks at once and 10 images a minute; tiers bought with
    # top-ups allow 100 to 5000 (https://wavespeed.ai/docs/account-levels).
    # The account's tier is unknown here: start at the lowest, accepted submits raise it.
    initial_concurrency = 3
    adapter = "kling_cli.providers.wavespeed:WaveSpeed"


class ComfyInfo(ProviderInfo):
    """Sources: the Router's model page (`docs_url`), its API page
    (github.com/Comfy-Org/docs, `development/comfy-router/api.mdx`) and, for Kling's own body,
    Kling's API reference (https://kling.ai/document-api/api/image/o1/image-generation)."""

    id = "comfy"
    resume = "resumed by resending the request with its Idempotency-Key (kept 24 h)"
    name = "Comfy Router"
    default_base_url = "https://api.comfy.org"
    key_env_vars = ("COMFY_API_KEY",)  # the variable in Comfy's own examples (model page)
    docs_url = "https://docs.comfy.org/development/comfy-router/models/kling/kling-image-o1/code"
    capabilities = Capabilities(
        # "send URLs or raw Base64 in image_list as with Kling"; no upload API (API page).
        local_files="inline-base64",
        max_references=10,  # Kling's image_list (Kling API reference)
        max_images=9,  # Kling's n (Kling API reference)
        output_formats=(),  # Kling has no output format field
        negative_prompt=False,
        # The answer carries the images; a lost answer is collected by resending the request
        # with the same Idempotency-Key (API page).
        push=("sync",),
        client_task_id_lookup=True,
        # "Reuse it for every attempt of that logical call" (docs.comfy.org Router errors page,
        # "Retry safely").
        idempotent_submit=True,
    )
    # "Comfy Router charges the model maker's list price" (docs.comfy.org catalog page for
    # kling/kling-image-o1); Kling's is taken as the resellers' $0.028 (see kling.py).
    price = Price(
        usd_per_image=0.028,
        source="Kling list price, which Comfy Router charges (docs.comfy.org catalog)",
        as_of="2026-11",
    )
    adapter = "kling_cli.providers.comfy:Comfy"


class AimlInfo(ProviderInfo):
    """Sources: the image-o1 API reference (`docs_url`; github.com/aimlapi/api-docs,
    `docs/api-references/image-models/kling-ai/image-o1.md`)."""

    id = "aimlapi"
    resume = "cannot be resumed: synchronous, no task id; a result not received is lost"
    name = "AIML API"
    default_base_url = "https://api.aimlapi.com"
    # AIML documents no variable name; this is the one its third-party clients use.
    key_env_vars = ("AIMLAPI_API_KEY",)
    docs_url = "https://docs.aimlapi.com/api-references/image-models/kling-ai/image-o1"
    capabilities = Capabilities(
        # Local files go inline: "URLs or local Base64 encoded images" (API reference).
        local_files="data-uri",
        min_references=1,  # image_urls 1-10 (API reference)
        max_references=10,
        max_images=9,  # num_images 1-9 (API reference)
        # The documented enum has no `auto` (API reference).
        aspect_ratios=tuple(ratio for ratio in ASPECT_RATIOS if ratio != "auto"),
        output_formats=("png", "jpeg", "webp"),  # output_format (API reference)
        negative_prompt=False,
        push=("sync",),
    )
    # The documented answer's `credits_used: 58800` for one image, at 2,000,000 credits a dollar.
    price = Price(
        usd_per_image=0.0294,
        source="docs.aimlapi.com image-o1 example (58,800 credits) and credit FAQ",
        as_of="2026-11",
    )
    adapter = "kling_cli.providers.aimlapi:Aiml"


# In the order `kling providers` lists them.
CATALOG: dict[str, ProviderInfo] = {
    info.id: info
    for info in (
        RunwareInfo(),
        UnificallyInfo(),
        ApiInOneInfo(),
        InferenceShInfo(),
        KlingInfo(),
        FalInfo(),
        WaveSpeedInfo(),
        ComfyInfo(),
        AimlInfo(),
    )
}
