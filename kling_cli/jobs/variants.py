"""Cross-format variants: one prompt and its references at several aspect ratios (`-a 16:9,1:1`,
`-a all`), one job per ratio. Every ratio is checked against the documented limits and the
provider, and the whole fan-out priced, before the first job is paid; each job is then run by
the same `run_job` as a single generation, one after another. The ratios are independent (a
failed task or a refused prompt stops only its own), but a refusal of the account (a rejected
key, no credit left) stops the fan-out: the provider would refuse every ratio after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kling_cli.errors import ExitCode, InterruptedByUser, InvalidRequestError
from kling_cli.limits import ASPECT_RATIOS
from kling_cli.resend import ACCOUNT_REFUSALS

if TYPE_CHECKING:
    from kling_cli.config import ConfigFile
    from kling_cli.jobs.generation import ProgressFor
    from kling_cli.jobs.life import JobOptions, JobResult
    from kling_cli.providers.base import Provider
    from kling_cli.request import GenerationRequest
    from kling_cli.session import Notify

# `all`: the eight explicit ratios (`auto` follows the references, so it is no variant).
VARIANT_RATIOS: tuple[str, ...] = tuple(ratio for ratio in ASPECT_RATIOS if ratio != "auto")


def ratio_list(value: Any, *, what: str = "--aspect-ratio") -> list[str] | None:
    """The ratios of a fan-out given as `16:9,1:1,9:16`, `all` or (a manifest) a JSON list;
    None when `value` names one ratio (or none), which the request itself checks. Raises
    `InvalidRequestError` naming the first bad or repeated ratio."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "all":
            return list(VARIANT_RATIOS)
        if "," not in text:
            return None
        ratios: list[Any] = [part.strip() for part in text.split(",")]
    elif isinstance(value, list | tuple):
        ratios = list(value)
    else:
        return None
    if not ratios:
        raise InvalidRequestError(f"{what} is an empty list; give at least one aspect ratio.")
    seen: set[str] = set()
    for ratio in ratios:
        if not isinstance(ratio, str) or ratio not in VARIANT_RATIOS:
            raise InvalidRequestError(
                f"{what} {ratio!r} in {_shown(value)} is not an aspect ratio a variant can have; "
                f"list some of {', '.join(VARIANT_RATIOS)}, or give all."
            )
        if ratio in seen:
            raise InvalidRequestError(f"{what} {_shown(value)} lists {ratio} twice.")
        seen.add(ratio)
    return [str(ratio) for ratio in ratios]


def _shown(value: Any) -> str:
    """The list as given, cut short: an error is one sentence, not the 5,000 items pasted."""
    text = value if isinstance(value, str) else ",".join(str(part) for part in value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def variant_id(base: str, ratio: str) -> str:
    """A variant's id (a batch item's, its files' `{id}`): the base with the ratio, `hero-16x9`."""
    return f"{base}-{ratio.replace(':', 'x')}"


@dataclass
class Variant:
    """One ratio of a fan-out: its request, and its job's result (None: never submitted, the
    run was interrupted or the account refused before it)."""

    request: GenerationRequest
    result: JobResult | None = None

    @property
    def aspect_ratio(self) -> str:
        return str(self.request.aspect_ratio)


@dataclass
class VariantsRun:
    provider: Provider
    variants: list[Variant]
    estimate: float
    # A signal that came between two jobs (or after the last, while its gallery was being
    # written): no job was running to record it, but the run stops and exits 128+signum.
    stopped: InterruptedByUser | None = None
    # The variant whose job the account's refusal ended (`ACCOUNT_REFUSALS`): none after it
    # was sent.
    refused: Variant | None = None

    @property
    def skip_reason(self) -> str:
        """Why the ratios without a job were not submitted: the account's refusal
        (`key_rejected`, `out_of_credits`), else `interrupted`."""
        if self.refused is not None and self.refused.result is not None:
            return str(self.refused.result.refusal)
        return "interrupted"

    def not_submitted(self) -> str:
        """Why a ratio was not sent, as a clause: "the account is out of credits at Runware"."""
        name = self.provider.name
        return {
            "out_of_credits": f"the account is out of credits at {name}",
            "key_rejected": f"{name} rejected the API key",
        }.get(self.skip_reason, "the run was interrupted")

    @property
    def interruption(self) -> InterruptedByUser | None:
        """The signal that stopped the run, as a job recorded it or as it came between jobs."""
        for variant in self.variants:
            if variant.result is not None and _interrupted(variant.result):
                assert isinstance(variant.result.error, InterruptedByUser)
                return variant.result.error
        return self.stopped

    @property
    def exit_code(self) -> int:
        """0 when every variant succeeded; 128+signum when a signal stopped the run; the
        refusal's code (4, 6) when the account's refusal stopped it; the error's own code when
        all failed alike; 8 (some failed) when some succeeded."""
        interruption = self.interruption
        if interruption is not None:
            return int(interruption.exit_code)
        if self.refused is not None and self.refused.result is not None:
            return self.refused.result.exit_code
        codes = [v.result.exit_code if v.result else None for v in self.variants]
        failed = [code for code in codes if code != ExitCode.OK]
        if not failed:
            return int(ExitCode.OK)
        if len(failed) < len(codes):
            return int(ExitCode.SOME_ITEMS_FAILED)
        first = failed[0]
        return int(first) if first is not None else int(ExitCode.SOME_ITEMS_FAILED)


def _interrupted(result: JobResult) -> bool:
    return isinstance(result.error, InterruptedByUser)


def variant_requests(request: GenerationRequest, ratios: Sequence[str]) -> list[GenerationRequest]:
    """The same request at each ratio (each already one of VARIANT_RATIOS)."""
    return [request.model_copy(update={"aspect_ratio": ratio}) for ratio in ratios]


def fan_out_estimate(provider: Provider, requests: Sequence[GenerationRequest]) -> float:
    from kling_cli.jobs.preview import estimated_cost

    return sum(estimated_cost(provider, request) for request in requests)


def generate_variants(
    config: ConfigFile,
    provider_id: str | None,
    requests: Sequence[GenerationRequest],
    options: JobOptions,
    *,
    emulate: bool = False,
    max_cost: float | None = None,
    progress_for: ProgressFor | None = None,
    note: Notify = lambda text: None,
) -> VariantsRun:
    """Check every request against the provider, check before paying, refuse an estimate over
    `max_cost`, then run one job per request (`run_job`, as `generate` does). Raises before
    the first submit; afterwards each outcome is on its variant's result. An interruption
    or a refusal of the account (`ACCOUNT_REFUSALS`) stops the fan-out: the ratios not reached
    are not submitted."""
    from kling_cli import interrupts
    from kling_cli.batch_budget import refuse_over_budget
    from kling_cli.jobs.generation import progress_context
    from kling_cli.jobs.preflight import preflight
    from kling_cli.jobs.record import open_journal
    from kling_cli.jobs.run import run_job
    from kling_cli.session import open_session

    journal = open_journal()
    run: VariantsRun | None = None
    try:
        with open_session(provider_id, emulate=emulate, config=config, note=note) as session:
            provider = session.provider
            for request in requests:
                provider.check_request(request)
            for request in requests:
                preflight(options, request, journal=journal, emulated=session.emulated)
            estimate = fan_out_estimate(provider, requests)
            refuse_over_budget(estimate, max_cost)
            note(
                f"{len(requests)} aspect ratios, one job each at {provider.name}: estimated "
                f"${estimate:.4f} in all."
            )
            run = VariantsRun(provider, [Variant(request) for request in requests], estimate)
            try:
                for number, variant in enumerate(run.variants, 1):
                    if interrupts.pending() is not None:
                        # A SIGTERM whose exception was swallowed (raised inside a `__del__`
                        # the garbage collector ran) must still stop the paying.
                        raise KeyboardInterrupt
                    note(f"{variant.aspect_ratio} ({number}/{len(run.variants)})")
                    parts = variant.request.split(provider.capabilities.max_images)
                    tasks: list[str | None] = [None] * len(parts)
                    with progress_context(progress_for, provider.name, tasks) as progress:
                        variant.result = run_job(
                            session, journal, variant.request, options, progress=progress
                        )
                    if _interrupted(variant.result):
                        _name_the_ratio(variant, number)
                        break
                    if variant.result.refusal in ACCOUNT_REFUSALS:
                        run.refused = variant
                        break
            except KeyboardInterrupt as exc:
                # Between two jobs: the finished ones are recorded, the rest never sent; the
                # run still ends with the one report naming them all.
                run.stopped = stopped_between_jobs(exc)
            return run
    except KeyboardInterrupt as exc:
        if run is None:
            raise  # before the first submit: nothing to name
        # While the session closed after the last job: every job is recorded, and the run
        # still ends with the one report naming them all.
        run.stopped = run.stopped or stopped_between_jobs(exc)
        return run
    finally:
        journal.close()


def _name_the_ratio(variant: Variant, number: int) -> None:
    """The job's own "Interrupted before anything was submitted" is true of its ratio only:
    the ratios before it were submitted, and paid for."""
    assert variant.result is not None and variant.result.error is not None
    if number > 1 and not variant.result.job.get("task_ids"):
        error = variant.result.error
        error.message = (
            f"Interrupted before {variant.aspect_ratio} was submitted; the ratios before it "
            "are finished and recorded, the rest were not sent."
        )
        error.hint = "See them with: kling jobs"


def stopped_between_jobs(interrupt: BaseException) -> InterruptedByUser:
    """A signal that no running job recorded: the jobs before it are finished and recorded,
    and no other was sent."""
    from kling_cli.errors import signal_number

    return InterruptedByUser(
        "Interrupted between jobs; the jobs that finished are saved and recorded, and the "
        "ratios not reached were not submitted.",
        signum=signal_number(interrupt),
        hint="See them with: kling jobs",
    )


def manifest_entries(
    provider_id: str, variants: Sequence[Variant], skip_reason: str = "interrupted"
) -> list[dict[str, Any]]:
    """Each variant as a `manifest.json` item (`kling_cli.schemas.ManifestEntry`), the shape
    the gallery report reads; `skip_reason` is why those without a job were not sent."""
    from kling_cli.jobs.views import saved_file_entry

    entries = []
    for number, variant in enumerate(variants, 1):
        result = variant.result
        recorded = result.record.request if result is not None and result.record else None
        entry: dict[str, Any] = {
            "id": str((recorded or {}).get("aspect_ratio") or variant.aspect_ratio),
            "line": number,
            "provider": provider_id,
            "status": "skipped",
            "job_id": None,
            "task_ids": [],
            "request": recorded or variant.request.model_dump(mode="json"),
            "files": [],
            "cost": None,
            "error": None,
            "skip_reason": skip_reason if result is None else None,
        }
        if result is not None:
            entry.update(
                status="succeeded" if result.error is None else "failed",
                job_id=result.job_id,
                task_ids=list(result.job.get("task_ids") or []),
                files=[saved_file_entry(saved) for saved in result.files],
                cost=result.job.get("cost"),
                error=result.error.message if result.error else None,
            )
        entries.append(entry)
    return entries
