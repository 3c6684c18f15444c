"""The jobs layer: one owner for a job's life, under every command that runs jobs.

The request path reads in five files: command → jobs → engine → adapter → download.

- `preflight.preflight`: what can be known before paying (output directory, file names,
  journal) is checked before paying.
- `run.run_job` / `run.resume_job`: submit (or pick up), wait, download, and return a
  `life.JobResult`; print nothing. Whatever stops a job after its submit (a provider failure,
  a timeout, Ctrl-C, SIGTERM, a full disk, a locked journal, a bug) is recorded with its task
  ids, and the result says how to resume it.
- `preview.preview`: the dry run, built by the engine's own submission builder.
- `generation.generate_job` / `job_status`: `kling generate` and `kling status` end to end
  (choose the provider, check, record, run), shared with the Python API (`kling_cli.api`).
- `lookup.find_job` / `adopt_task`: which job a command means, or a task submitted elsewhere.
- `pickup.standing`: how a job left behind stands (done, follow, unknown outcome, forgotten).
- `record`: the journal writes, with a fallback file for writes the journal refuses.
- `state`: job states and what the user is told; `views`: the job as `--json` shows it.

Submodules are imported where used: `kling jobs` and `kling --help` load none of the engine.
"""
