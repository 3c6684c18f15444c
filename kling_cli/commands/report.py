"""`kling report MANIFEST...`: a gallery page from batch manifests."""

from __future__ import annotations

from pathlib import Path

import typer

from kling_cli.commands.common import JSON_OPTION
from kling_cli.errors import ExitCode, InvalidRequestError
from kling_cli.ui import Output, versioned


def report(
    ctx: typer.Context,
    manifests: list[Path] = typer.Argument(
        ...,
        metavar="MANIFEST",
        help="manifest.json files, or the folders holding them (several shards make one report).",
    ),
    output_path: Path = typer.Option(
        Path("report.html"),
        "--output",
        "-o",
        help="The page to write; thumbnails go to thumbs/ beside it.",
    ),
    summary_md: Path | None = typer.Option(
        None,
        "--summary-md",
        metavar="PATH",
        help="Append the totals and a table in Markdown to PATH (e.g. $GITHUB_STEP_SUMMARY).",
    ),
    as_json: bool = JSON_OPTION,
) -> int:
    """Build an HTML gallery of batch results from one or more manifests.

    One card per item: thumbnails linking to the images, the prompt, provider, sizes, cost,
    job and task ids, and why an item failed or was skipped. Links are relative and the page
    loads nothing from the internet, so it browses offline from a CI artifact."""
    from kling_cli.jobs.preflight import check_report_path
    from kling_cli.report import append_summary, write_report

    output: Output = ctx.obj
    check_report_path(output_path, option="-o")
    if summary_md is not None:
        check_report_path(summary_md, option="--summary-md")
    try:
        path = write_report(manifests, output_path)
        if summary_md is not None:
            append_summary(manifests, summary_md)
    except OSError as exc:
        # Checked above; what fails now is the disk (full, or gone read-only).
        raise InvalidRequestError(
            f"Cannot write {exc.filename or output_path}: {exc.strerror or exc}."
        ) from None
    if output.json_mode:
        output.emit_json(versioned(report=str(path)))
    else:
        output.result(str(path))
    return ExitCode.OK
