"""What `kling generate` prints for a run of several aspect ratios (`-a 16:9,1:1`, `-a all`), and
the gallery report it writes for one; the jobs themselves are run by `kling_cli.jobs.variants`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli.errors import InterruptedByUser
from kling_cli.ui import Output, describe_file, envelope

if TYPE_CHECKING:
    from kling_cli.jobs.life import JobResult
    from kling_cli.jobs.variants import Variant, VariantsRun


def write_report(
    output: Output,
    provider_id: str,
    variants: list[Variant],
    path: Path,
    *,
    skip_reason: str = "interrupted",
) -> tuple[Path | None, InterruptedByUser | None]:
    """The same gallery a batch gets (`kling_cli.report`), one card per ratio. It is written
    after the jobs are paid for, so nothing that stops it may lose them: a full disk is a
    warning (the report is None), and a signal is returned to be put on the run, whose
    envelope is printed still."""
    from kling_cli.errors import signal_number
    from kling_cli.jobs.variants import manifest_entries
    from kling_cli.report import write_entries

    entries = manifest_entries(provider_id, variants, skip_reason)
    try:
        written = write_entries(
            [(entry, Path.cwd()) for entry in entries], path, title="kling generate"
        )
    except OSError as exc:
        output.warn(f"The report {path} could not be written ({exc.strerror or exc}).")
        return None, _swallowed_signal(path)
    except KeyboardInterrupt as exc:
        return None, _stopped_in_report(path, signal_number(exc))
    return written, _swallowed_signal(path)


def _swallowed_signal(path: Path) -> InterruptedByUser | None:
    """A SIGTERM or SIGHUP whose exception a `__del__` swallowed while the report was made
    still ends the run as interrupted."""
    from kling_cli import interrupts

    signum = interrupts.pending()
    return _stopped_in_report(path, signum) if signum is not None else None


def _stopped_in_report(path: Path, signum: int) -> InterruptedByUser:
    return InterruptedByUser(
        f"Interrupted while writing the report {path}; the jobs are finished, recorded "
        "and their images saved.",
        signum=signum,
        hint="See them with: kling jobs",
    )


def _files(result: JobResult) -> list[dict[str, Any]]:
    files = [describe_file(saved) for saved in result.files]
    for saved, described in zip(result.files, files, strict=True):
        described["size_mismatch"] = saved.path in result.size_mismatches
    return files


def print_variants(output: Output, run: VariantsRun, report: Path | None) -> int:
    """Every variant's images on stdout (in the order of the ratios), each failure on stderr
    named by its ratio; with --json, one envelope whose `variants` holds each job."""
    exit_code = run.exit_code
    interruption = run.interruption
    results = [variant.result for variant in run.variants if variant.result is not None]
    for finished in results:
        for warning in finished.warnings:
            output.warn(warning)
    if output.json_mode:
        described = []
        for variant in run.variants:
            result = variant.result
            error = result.error if result else None
            described.append(
                {
                    "aspect_ratio": variant.aspect_ratio,
                    "exit_code": result.exit_code if result else exit_code,
                    "job": result.job if result else None,
                    "files": _files(result) if result else [],
                    "error": envelope(exit_code=1, error=error)["error"],
                    "skip_reason": None if result else run.skip_reason,
                }
            )
        first_error = next((r.error for r in results if r.error is not None), run.stopped)
        payload = envelope(
            exit_code=exit_code,
            files=[file for entry in described for file in entry["files"]],
            error=first_error,
        )
        payload["variants"] = described
        payload["report"] = str(report) if report is not None else None
        output.emit_json(payload)
        return exit_code
    for variant in run.variants:
        result = variant.result
        if result is None:
            output.note(
                f"{variant.aspect_ratio}: not submitted ({run.not_submitted()}); nothing was "
                "charged for it."
            )
            continue
        for saved in result.files:
            output.result(str(saved.path))
        if result.error is not None:
            result.error.message = f"{variant.aspect_ratio}: {result.error.message}"
            output.error(result.error)
    costs = [float(r.job["cost"]) for r in results if r.job.get("cost")]
    if costs:
        output.note(f"Cost reported by {run.provider.name}: ${sum(costs):.4f}")
    if report is not None:
        output.note(f"Report: {report}")
    if run.stopped is not None and interruption is run.stopped:
        output.error(run.stopped)
    return exit_code
