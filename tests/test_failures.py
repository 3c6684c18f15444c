"""What the user sees when things go wrong, driven by the emulator's fault injection."""

from __future__ import annotations

from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault


@pytest.mark.parametrize("provider", ["runware", "unifically"])
def test_failed_task_exits_3_with_the_providers_reason(
    run_cli, use_emulator: Emulator, provider: str
) -> None:
    use_emulator.inject(provider, Fault(kind="task_failure", message="Content policy violation"))
    result = run_cli("generate", "a red fox", "-p", provider, "--json")
    assert result.exit_code == 3
    body = result.json()
    assert body["status"] == "error" and body["exit_code"] == 3
    assert body["error"]["code"] == "task_failed"
    assert "Content policy violation" in body["error"]["message"]
    assert body["job"]["provider"] == provider and body["job"]["state"] == "failed"
    assert not Path("kling-output").exists() or not any(Path("kling-output").iterdir())


@pytest.mark.parametrize("provider", ["runware", "unifically"])
def test_a_rejected_key_exits_4_without_showing_it(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv(f"KLING_{provider.upper()}_API_KEY", "sk-wrong-key-0123456789")
    result = run_cli("generate", "a red fox", "-p", provider)
    assert result.exit_code == 4
    assert "Invalid API key" in result.stderr
    assert f"kling config set-key {provider}" in result.stderr
    assert "sk-wrong-key-0123456789" not in result.stdout + result.stderr


def test_no_key_exits_4_and_says_how_to_set_one(run_cli) -> None:
    result = run_cli("generate", "a red fox", "-p", "runware")
    assert result.exit_code == 4
    assert "No API key for Runware" in result.stderr
    assert "kling config set-key runware" in result.stderr
    assert "$KLING_RUNWARE_API_KEY" in result.stderr and "$RUNWARE_API_KEY" in result.stderr
    assert "--emulate" in result.stderr


def test_no_provider_and_no_key_exits_4_and_mentions_emulate(run_cli) -> None:
    result = run_cli("generate", "a red fox")
    assert result.exit_code == 4
    assert "No provider is set up yet" in result.stderr
    assert "--emulate" in result.stderr


def test_plain_http_to_a_remote_host_is_refused(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_RUNWARE_API_KEY", "k" * 20)
    monkeypatch.setenv("KLING_RUNWARE_BASE_URL", "http://api.example.com/v1")
    result = run_cli("generate", "a red fox", "-p", "runware")
    assert result.exit_code == 4
    assert "must use https" in result.stderr


def test_submit_rate_limited_with_retry_after_is_retried(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("runware", Fault(kind="rate_limit", on="submit", retry_after=1))
    result = run_cli("generate", "a red fox", "-p", "runware")
    assert result.exit_code == 0, result.stderr
    submits = [
        r
        for r in use_emulator.requests
        if r.server == "api" and r.json()[0]["taskType"] == "imageInference"
    ]
    assert len(submits) == 2
    assert "rate limited; retrying in 1.0 s" in result.stderr


def test_rate_limited_to_the_end_exits_6(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject(
        "unifically", Fault(kind="rate_limit", on="submit", retry_after=0, times=50)
    )
    result = run_cli("generate", "a red fox", "-p", "unifically")
    assert result.exit_code == 6
    assert "Rate limit exceeded" in result.stderr


def test_server_errors_while_polling_are_retried(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("unifically", Fault(kind="server_error", on="poll", times=2))
    result = run_cli("generate", "a red fox", "-p", "unifically")
    assert result.exit_code == 0, result.stderr
    assert "answered HTTP 500; retrying" in result.stderr


def test_submit_is_not_repeated_after_a_server_error(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("unifically", Fault(kind="server_error", on="submit", times=1))
    result = run_cli("generate", "a red fox", "-p", "unifically")
    assert result.exit_code == 1
    submits = [r for r in use_emulator.requests if r.server == "api" and r.method == "POST"]
    assert len(submits) == 1


def test_timeout_exits_5_with_the_resume_command(
    run_cli, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator(latency=30) as slow:
        monkeypatch.setenv("KLING_UNIFICALLY_BASE_URL", slow.base_url("unifically"))
        monkeypatch.setenv("KLING_UNIFICALLY_API_KEY", "emulator-key")
        # A deadline the submit is sent well within, also when parallel workers slow the start.
        result = run_cli("generate", "a red fox", "-p", "unifically", "--timeout", "4", "--json")
    assert result.exit_code == 5
    body = result.json()
    assert body["error"]["code"] == "timeout"
    task_id = body["job"]["task_id"]
    assert task_id and body["job"]["state"] == "timed_out"
    assert "may still finish" in body["error"]["message"]


def test_a_timed_out_job_is_resumed_by_status(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # The submit is sent well within the deadline, also when parallel workers slow the start,
    # and the hold outlives it.
    with Emulator(latency=6) as slow:
        monkeypatch.setenv("KLING_RUNWARE_BASE_URL", slow.base_url("runware"))
        monkeypatch.setenv("KLING_RUNWARE_API_KEY", "emulator-key")
        result = run_cli("generate", "a red fox", "-p", "runware", "-n", "2", "--timeout", "3")
        assert result.exit_code == 5
        resume = next(line for line in result.stderr.splitlines() if "Resume with:" in line)
        command = resume.split("Resume with: ")[1].split()
        assert command[:2] == ["kling", "status"] and command[3:] == ["--wait", "--download"]
        job_id = command[2]

        listed = run_cli("jobs", "--json").json()["jobs"]
        assert [(job["id"], job["state"]) for job in listed] == [(job_id, "timed_out")]

        resumed = run_cli(*command[1:])
        assert resumed.exit_code == 0, resumed.stderr
        assert "succeeded" in resumed.stdout.splitlines()[0]
        paths = [
            line.strip() for line in resumed.stdout.splitlines() if line.strip().endswith(".png")
        ]
        assert len(paths) == 2 and all(Path(path).exists() for path in paths)
        submits = [
            r
            for r in slow.requests
            if r.server == "api" and r.json()[0]["taskType"] == "imageInference"
        ]
        assert len(submits) == 1  # resuming never submits (or pays) again


def test_a_truncated_download_resumes_where_it_stopped(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("images", Fault(kind="truncated_download", on="download", times=1))
    result = run_cli("generate", "a red fox", "-p", "runware", "--json")
    assert result.exit_code == 0, result.stderr
    assert "arrived truncated" in result.stderr
    first, second = [r for r in use_emulator.requests if r.server == "images"]
    assert "range" not in first.headers
    assert second.headers["range"].startswith("bytes=") and second.headers["range"] != "bytes=0-"
    [entry] = result.json()["files"]
    import hashlib

    from PIL import Image

    assert hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    with Image.open(entry["path"]) as image:
        image.load()
    assert not list(Path("kling-output").glob(".*.part"))


def test_a_download_that_keeps_failing_exits_7_and_keeps_the_job(
    run_cli, use_emulator: Emulator
) -> None:
    use_emulator.inject("images", Fault(kind="truncated_download", on="download", times=50))
    result = run_cli("generate", "a red fox", "-p", "runware", "--json")
    assert result.exit_code == 7
    body = result.json()
    assert body["error"]["code"] == "download_failed"
    assert body["job"]["state"] == "download_failed" and body["job"]["task_id"]
    out = Path("kling-output")
    assert not out.exists() or not [p for p in out.iterdir() if p.suffix == ".png"]
    assert not out.exists() or not list(out.glob(".*.part"))


def test_each_image_is_fsynced_whole_before_its_name_appears_then_the_names(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat as stat_module

    real_fsync = os.fsync
    synced: dict[int, tuple[int, int]] = {}  # inode: (bytes, names) when it was fsynced
    directory_listings: list[set[str]] = []  # what a synced directory held at the time

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        stat = os.fstat(fd)
        if stat_module.S_ISDIR(stat.st_mode):
            directory_listings.append(set(os.listdir(fd)))
        else:
            synced[stat.st_ino] = (stat.st_size, stat.st_nlink)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    result = run_cli("generate", "a red fox", "-p", "runware", "-n", "2", "--json")
    assert result.exit_code == 0, result.stderr
    files = result.json()["files"]
    assert len(files) == 2
    for entry in files:
        stat = Path(entry["path"]).stat()
        # One name (the .part) at fsync time: the image's own name came after.
        assert synced.get(stat.st_ino) == (stat.st_size, 1)
    # Then the directory, once, holding both names: they survive a power cut too.
    names = {Path(entry["path"]).name for entry in files}
    assert [listing for listing in directory_listings if names <= listing]


def test_an_image_is_told_saved_only_once_its_bytes_and_its_name_are_durable(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal, the sidecar and the screen hear of a saved image only after the folder's
    fsync that makes its name survive a power cut (one fsync for the task's images)."""
    import os
    import stat as stat_module

    from kling_cli.events import Listeners

    real_fsync, real_saved = os.fsync, Listeners.saved
    events: list[tuple[str, frozenset[str]]] = []

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        if stat_module.S_ISDIR(os.fstat(fd).st_mode):
            events.append(("folder synced", frozenset(os.listdir(fd))))

    def recording_saved(self: Listeners, task: object, file: object) -> None:
        events.append(("told", frozenset({file.path.name})))  # type: ignore[attr-defined]
        real_saved(self, task, file)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(Listeners, "saved", recording_saved)
    result = run_cli("generate", "a red fox", "-p", "runware", "-n", "3", "--json")
    assert result.exit_code == 0, result.stderr
    names = {Path(entry["path"]).name for entry in result.json()["files"]}
    told = [index for index, (kind, _) in enumerate(events) if kind == "told"]
    assert len(told) == 3
    for index in told:
        [name] = events[index][1]
        assert any(
            kind == "folder synced" and name in listing for kind, listing in events[:index]
        ), f"{name} was told saved before its folder was synced"
    assert sum(kind == "folder synced" and names <= listing for kind, listing in events) == 1
