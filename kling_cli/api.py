"""kling as a library: the same validation, journal and money rules as the CLI, as calls.

    import kling_cli
    job = kling_cli.generate("a red fox on a snowy ridge", emulate=True)
    print(job.images[0].path, job.cost)

Every call validates its arguments against the documented limits before any request and
raises the CLI's own errors (`kling_cli.errors`): `InvalidRequestError` (bad input, nothing
sent), `ConfigError` (no key, bad config), `TaskFailedError` (the provider failed the task),
`WaitTimeoutError` (past `timeout`; the job may still finish: `status(job_id, wait=True,
download=True)` resumes it), `DownloadError` (made, not saved), `RateLimitedError`,
`NetworkError`. An error raised after the submit carries the job as `error.job` (a dict with
`id` and `task_ids`): paid work is never lost. Ctrl-C is recorded and raised as
`JobInterrupted`, a KeyboardInterrupt with the same `.job`. The sync calls refuse to run
inside a running event loop (use `agenerate` there). Every job is in the journal, as
`kling jobs` shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli.api_results import (
    BatchItemResult,
    Image,
    Job,
    ProviderSummary,
    batch_item,
    job_from_record,
    job_of,
)
from kling_cli.errors import InvalidRequestError, JobInterrupted

if TYPE_CHECKING:
    from kling_cli.jobs.life import JobOptions
    from kling_cli.request import GenerationRequest

__all__ = [
    "BatchItemResult",
    "Image",
    "Job",
    "ProviderSummary",
    "agenerate",
    "generate",
    "list_providers",
    "run_batch",
    "status",
]


def generate(
    prompt: str,
    *,
    provider: str | Sequence[str] | None = None,
    refs: Sequence[str | Path] = (),
    aspect_ratio: str | None = None,
    resolution: str = "1k",
    num_images: int = 1,
    output_format: str | None = None,
    negative_prompt: str | None = None,
    mode: str = "default",
    webhook: str | None = None,
    quality: int | None = None,
    upload_to: str | None = None,
    download: bool = False,
    url_ttl: int | None = None,
    safety: str | None = None,
    output_dir: str | Path = "kling-output",
    name: str = "{slug}-{task}",
    timeout: float = 600.0,
    wait: bool = True,
    overwrite: bool = False,
    sidecar: bool = True,
    emulate: bool = False,
) -> Job:
    """Generate images and save them (the `kling generate` options, as keywords). `prompt`
    is 1-2500 characters naming references `@image_1`...; `refs` up to 10 URLs or local
    JPEG/PNG files; `num_images` 1-9; `timeout` in seconds bounds the whole job. Without
    `wait` the job is only submitted (`status` finishes it). Provider options (`kling
    providers show` lists who offers which; elsewhere `InvalidRequestError`, nothing sent):
    `webhook`, an https URL the provider POSTs to when the job ends (`kling ingest` reads the
    body); `quality`, JPEG/WebP quality 20-99 (with `output_format` "jpeg" or "webp");
    `upload_to`, an https URL (e.g. a presigned PUT) the provider uploads the one image to,
    saved here too only with `download`; `url_ttl`, seconds the provider keeps the result URL
    (60 to 2**31-1); `safety`, "fast" for the provider's content check. Returns the `Job`
    with its images; raises as the module says."""
    from kling_cli.jobs.generation import generate_job

    _refuse_inside_a_running_loop()
    request, options = _request(locals())
    result = generate_job(
        _config(), provider, request, options, emulate=emulate, aspect_unset=aspect_ratio is None
    )
    if result.error is not None and result.error.code == "interrupted":
        raise JobInterrupted(result.error.message, result.job)
    return job_of(result)


async def agenerate(
    prompt: str,
    *,
    provider: str | Sequence[str] | None = None,
    refs: Sequence[str | Path] = (),
    aspect_ratio: str | None = None,
    resolution: str = "1k",
    num_images: int = 1,
    output_format: str | None = None,
    negative_prompt: str | None = None,
    mode: str = "default",
    webhook: str | None = None,
    quality: int | None = None,
    upload_to: str | None = None,
    download: bool = False,
    url_ttl: int | None = None,
    safety: str | None = None,
    output_dir: str | Path = "kling-output",
    name: str = "{slug}-{task}",
    timeout: float = 600.0,
    wait: bool = True,
    overwrite: bool = False,
    sidecar: bool = True,
    emulate: bool = False,
) -> Job:
    """`generate`, awaitable: runs in the caller's event loop (Jupyter, Prefect, an async
    service). A cancelled call records the job as interrupted before passing the
    cancellation on."""
    from kling_cli.jobs.generation import agenerate_job

    request, options = _request(locals())
    result = await agenerate_job(
        _config(), provider, request, options, emulate=emulate, aspect_unset=aspect_ratio is None
    )
    return job_of(result)


def status(
    job_or_task: str | None = None,
    *,
    provider: str | None = None,
    wait: bool = False,
    download: bool = False,
    timeout: float = 600.0,
    output_dir: str | Path | None = None,
) -> Job:
    """Where a job stands (`kling status`): a job id, a provider task id (with `provider`,
    for a task submitted elsewhere), or None for the latest job. With `wait` and `download`
    it finishes the job. Never submits anything."""
    from kling_cli.deadline import check_timeout
    from kling_cli.jobs.generation import job_status

    _refuse_inside_a_running_loop()
    check_timeout(timeout)
    record, result = job_status(
        _config(),
        job_or_task,
        provider,
        wait=wait,
        download=download,
        timeout=timeout,
        output_dir=Path(output_dir) if output_dir is not None else None,
    )
    if result is not None and result.error is not None:
        raise result.error
    return job_from_record(record)


def run_batch(
    items: Iterable[Mapping[str, Any]],
    *,
    provider: str | None = None,
    output_dir: str | Path = "kling-output",
    name: str = "{id}",
    concurrency: int = 8,
    timeout: float = 600.0,
    max_cost: float | None = None,
    skip_existing: bool = False,
    sidecar: bool = True,
    emulate: bool = False,
    on_result: Callable[[BatchItemResult], None] | None = None,
) -> list[BatchItemResult]:
    """Run many generations as `kling batch` does: `items` are manifest items (`id`, `prompt`,
    `provider`, `refs`, `aspect_ratio`, `resolution`, `num_images`, `format`,
    `negative_prompt`, `mode`), every one checked before anything is paid
    (`InvalidRequestError` naming each bad item); items run `concurrency` at a time, each a
    job in the journal, and a second call with the same items resumes rather than pays
    again. `on_result` is called with each item as it ends; the results come back in item
    order, and `output_dir/manifest.json` is written. Ctrl-C raises `JobInterrupted` after
    recording every item in flight."""
    from kling_cli.batch_results import manifest_entry
    from kling_cli.batch_run import execute_batch, plan_batch, preflight_batch
    from kling_cli.deadline import check_timeout
    from kling_cli.manifest import BatchItem
    from kling_cli.run_manifest import write_manifest

    _refuse_inside_a_running_loop()
    check_timeout(timeout)
    if concurrency < 1:
        raise InvalidRequestError(f"concurrency must be at least 1, not {concurrency}.")
    config = _config()
    batch_items = [BatchItem(line, dict(fields)) for line, fields in enumerate(items, start=1)]
    plan = plan_batch(
        batch_items,
        config,
        source="items",
        defaults={},
        provider=provider,
        emulate=emulate,
        max_cost=max_cost,
    )
    directory = Path(output_dir)
    preflight_batch(plan.planned, directory, name, skip_existing=skip_existing)
    results, interrupt = execute_batch(
        config,
        plan,
        emulate=emulate,
        on_result=(lambda result: on_result(batch_item(result)))
        if on_result
        else (lambda result: None),
        output_dir=directory,
        concurrency=concurrency,
        timeout=timeout,
        sidecars=sidecar,
        name_template=name,
        max_cost=max_cost,
        skip_existing=skip_existing,
    )
    ordered = sorted(results, key=lambda result: result.item.item.line)
    write_manifest(directory, [manifest_entry(result) for result in ordered])
    if interrupt is not None:
        raise JobInterrupted("Interrupted; items in flight keep running and are recorded.", None)
    return [batch_item(result) for result in ordered]


def list_providers() -> list[ProviderSummary]:
    """Every provider (named copies from the config included), in `kling providers` order."""
    from kling_cli.config import resolve_key

    config = _config()
    return [
        ProviderSummary(
            info.id,
            info.name,
            float(info.price.usd_per_image),
            resolve_key(info, config, check=False) is not None,
        )
        for info in config.registry.infos().values()
    ]


def _refuse_inside_a_running_loop() -> None:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise InvalidRequestError(
        "kling_cli.generate() cannot run inside a running event loop (Jupyter, an async "
        "service); await kling_cli.agenerate(...) there. Nothing was sent."
    )


def _config() -> Any:
    from kling_cli.config import load_config

    return load_config()


def _request(arguments: dict[str, Any]) -> tuple[GenerationRequest, JobOptions]:
    from kling_cli.deadline import check_timeout
    from kling_cli.delivery import DELIVERY_FIELDS, delivery_fields, upload_options
    from kling_cli.jobs.life import JobOptions
    from kling_cli.jobs.preflight import check_names
    from kling_cli.request import build_request

    check_timeout(arguments["timeout"])
    request = build_request(
        prompt=arguments["prompt"],
        references=[str(ref) for ref in arguments["refs"]],
        aspect_ratio=arguments["aspect_ratio"],
        resolution=arguments["resolution"],
        num_images=arguments["num_images"],
        output_format=arguments["output_format"],
        negative_prompt=arguments["negative_prompt"],
        mode=arguments["mode"],
        **delivery_fields(**{name: arguments[name] for name in DELIVERY_FIELDS}),
    )
    options = JobOptions(
        Path(arguments["output_dir"]),
        arguments["timeout"],
        arguments["wait"],
        arguments["overwrite"],
        arguments["sidecar"],
        arguments["name"],
    )
    if arguments["upload_to"] or arguments["download"]:
        options = upload_options(options, arguments["upload_to"], arguments["download"])
    check_names(options, request)
    return request, options
