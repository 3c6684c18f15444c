"""What `kling batch` prints: a progress bar or one line per item while it runs, then the
summary (and `manifest.json`). Printing only: the decisions are the batch's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from kling_cli.errors import ExitCode
from kling_cli.ui import Output, versioned

if TYPE_CHECKING:
    from kling_cli.batch_results import ItemResult
    from kling_cli.run_manifest import ManifestWriter


def counted(number: int, noun: str) -> str:
    """`1 image`, `2 images`: a count with its noun agreeing (nouns here take an -s)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


class Progress:
    """A progress bar on a terminal; one line per finished item otherwise; JSON lines with
    --json."""

    def __init__(self, output: Output, total: int) -> None:
        self.output = output
        self.total = total
        self.done = self.failed = self.images = self.running = 0
        self.spent = 0.0  # as reported by the providers
        self.bar: Any = None
        if output.stderr.is_terminal and not output.json_mode:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=output.stderr,
                transient=True,
            )
            self.task = self.bar.add_task("", total=total)
            self.bar.start()

    def started(self, item: Any) -> None:
        self.running += 1
        self._show()

    def _show(self, advance: int = 0) -> None:
        if self.bar is None:
            return
        parts = [f"{self.running} running", f"{self.failed} failed", counted(self.images, "image")]
        if self.spent:
            parts.append(f"${self.spent:.2f} spent")
        self.bar.update(self.task, advance=advance, description=" · ".join(parts))

    def finished(self, result: ItemResult) -> None:
        from kling_cli.batch_results import NOT_SUBMITTED, manifest_entry

        for warning in result.warnings:
            self.output.warn(warning)
        self.done += 1
        self.running -= 1
        self.failed += result.status == "failed"
        self.images += len(result.files)
        if result.status != "skipped":  # done in an earlier run, paid then
            self.spent += result.cost or 0.0
        if self.output.json_mode:
            self.output.emit_json(versioned(item=manifest_entry(result)))
        line = f"{result.status:<9} {result.item.item.item_id}"
        if result.error:
            line += f": {result.error}"
        elif result.not_submitted:
            line += f" ({NOT_SUBMITTED[result.skip_reason or '']})"
        else:
            line += f" ({counted(len(result.files), 'image')})"
        if self.bar is not None:
            self._show(advance=1)
            if result.status == "failed":
                self.bar.console.print(line, markup=False, highlight=False)
        elif not self.output.json_mode:
            self.output.note(f"[{self.done}/{self.total}] {line}")

    def retrying(self, reason: str, delay: float) -> None:
        if self.bar is None and not self.output.json_mode:
            self.output.note(f"{reason}; retrying in {delay:.1f} s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class Named(NamedTuple):
    """An item the summary names: failed, or not submitted."""

    line: int
    item_id: str
    status: str
    skip_reason: str | None
    error: str | None

    @property
    def not_submitted(self) -> bool:
        from kling_cli.batch_results import NOT_SUBMITTED

        return self.skip_reason in NOT_SUBMITTED


class Tally:
    """A run's results as they end: each one's manifest entry goes to `writer`, and what the
    summary prints is counted; only the items it names (failed, not submitted) are kept."""

    def __init__(self, writer: ManifestWriter) -> None:
        self.writer = writer
        self.counts = dict.fromkeys(("succeeded", "failed", "skipped", "interrupted"), 0)
        self.reasons: Counter[str | None] = Counter()
        self.images = 0
        self.spent = 0.0
        self.named: list[Named] = []

    def add(self, result: ItemResult) -> None:
        from kling_cli.batch_results import manifest_entry

        self.writer.add(manifest_entry(result))
        self.counts[result.status] += 1
        self.reasons[result.skip_reason] += 1
        self.images += len(result.files)
        if result.cost is not None and result.status != "skipped":
            self.spent += result.cost
        if result.status == "failed" or result.not_submitted:
            item = result.item.item
            self.named.append(
                Named(item.line, item.item_id, result.status, result.skip_reason, result.error)
            )


def summarize(
    output: Output,
    tally: Tally,
    output_dir: Path,
    estimate: float,
    max_cost: float | None,
    interrupted_exit: int | None = None,
    sharded: bool = False,
    report: bool = False,
    summary_md: Path | None = None,
) -> int:
    """Write `manifest.json`, print the summary (one JSON line with --json) and return the
    exit code: `interrupted_exit` (130, 143, 129) when a signal stopped the run, else 8 for a
    partial run, else 0."""
    from kling_cli.batch_results import (
        MAY_PAY_TWICE,
        NOT_SUBMITTED,
        SKIPPED_BUDGET,
        SKIPPED_DONE,
        SKIPPED_EXISTS,
    )

    manifest = tally.writer.finish(output_dir, keep_others=sharded)
    report_path = _write_views(output, manifest, report=report, summary_md=summary_md)
    ordered = sorted(tally.named, key=lambda r: r.line)
    counts = tally.counts
    not_submitted = [r for r in ordered if r.not_submitted]
    images, spent = tally.images, tally.spent
    partial = counts["failed"] or counts["interrupted"] or not_submitted
    exit_code = ExitCode.SOME_ITEMS_FAILED if partial else ExitCode.OK
    if interrupted_exit is not None:
        exit_code = ExitCode(interrupted_exit)
    if output.json_mode:
        output.emit_json(
            versioned(
                summary={
                    **counts,
                    "not_submitted": [
                        {"id": r.item_id, "line": r.line, "reason": r.skip_reason}
                        for r in not_submitted
                    ],
                    "images": images,
                    "cost": round(spent, 6),
                    "estimated_cost": round(estimate, 6),
                    "manifest": str(manifest),
                    "report": None if report_path is None else str(report_path),
                    "exit_code": int(exit_code),
                }
            )
        )
        return exit_code
    output.result(str(manifest))
    if report_path is not None:
        output.note(f"Report: {report_path}")
    done = tally.reasons[SKIPPED_DONE]
    skipped = f"{done} skipped (already done)"
    on_disk = tally.reasons[SKIPPED_EXISTS]
    skipped += f", {on_disk} skipped (files exist)" if on_disk else ""
    skipped += f", {counts['interrupted']} interrupted" if counts["interrupted"] else ""
    for reason, label in NOT_SUBMITTED.items():
        count = sum(r.skip_reason == reason for r in not_submitted)
        skipped += f", {count} skipped ({label})" if count else ""
    output.note(
        f"{counts['succeeded']} succeeded, {counts['failed']} failed, {skipped}; "
        f"{counted(images, 'image')}; reported cost ${spent:.4f}."
    )
    for result in ordered:
        if result.status == "failed":
            output.note(f"  failed: {result.item_id} (line {result.line}): {result.error}")
        elif result.not_submitted:
            label = NOT_SUBMITTED[result.skip_reason or ""]
            why = f": {result.error}" if result.error else ""
            output.note(f"  skipped ({label}): {result.item_id} (line {result.line}){why}")
    if any(r.skip_reason in MAY_PAY_TWICE for r in not_submitted):
        output.note(
            "Items skipped for an unknown outcome or a task not found are submitted again "
            "only with --resubmit-unknown, which may charge twice."
        )
    if any(r.skip_reason == SKIPPED_BUDGET for r in not_submitted) and max_cost is not None:
        output.note(
            f"Stopped submitting before the spend passed --max-cost ${max_cost:.2f}; what was "
            "submitted was finished. Run again with a higher --max-cost to do the rest."
        )
    return exit_code


def _write_views(
    output: Output, manifest: Path, *, report: bool, summary_md: Path | None
) -> Path | None:
    """report.html beside the manifest, and the Markdown summary. The run's outcome is already
    in the manifest, so a view that cannot be written is a warning, not a failed run."""
    if not report and summary_md is None:
        return None
    from kling_cli.report import REPORT_NAME, append_summary, write_report

    written = None
    try:
        if report:
            written = write_report([manifest], manifest.parent / REPORT_NAME)
        if summary_md is not None:
            append_summary([manifest], summary_md)
    except OSError as exc:
        output.warn(f"Could not write the report: {exc}")
    return written
