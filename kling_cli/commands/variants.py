"""What `kling generate` prints for a run of several aspect ratios (`-a 16:9,1:1`, `-a all`), and
the gallery report it writes for one; the jobs themselves are run by `kling_cli.jobs.variants`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kling_cli.errors import ExitCode
from kling_cli.ui import Output, describe_file, envelope

if TYPE_CHECKING:
    from kling_cli.jobs.life import JobResult
    from kling_cli.jobs.variants import Variant, VariantsRun


def write_report(provider_id: str, variants: list[Variant], path: Path) -> Path:
    """The same gallery a batch gets (`kling_cli.report`), one card per ratio."""
    from kling_cli.jobs.variants import manifest_entries
    from kling_cli.report import write_entries

    entries = manifest_entries(provider_id, variants)
    return write_entries([(entry, Path.cwd()) for entry in entries], path, title="kling generate")


def _files(result: JobResult) -> list[dict[str, Any]]:
    files = [describe_file(saved) for saved in result.files]
    for saved, described in zip(result.files, files, strict=True):
        described["size_mismatch"] = saved.path in result.size_mismatches
    return files


def print_variants(output: Output, run: VariantsRun, report: Path | None) -> int:
    """Every variant's images on stdout (in the order of the ratios), each failure on stderr
    named by its ratio; with --json, one envelope whose `variants` holds each job."""
    exit_code = run.exit_code
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
                    "exit_code": result.exit_code if result else int(ExitCode.INTERRUPTED),
                    "job": result.job if result else None,
                    "files": _files(result) if result else [],
                    "error": envelope(exit_code=1, error=error)["error"],
                }
            )
        first_error = next((r.error for r in results if r.error is not None), None)
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
            output.note(f"{variant.aspect_ratio}: not submitted (the run was interrupted).")
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
    return exit_code
