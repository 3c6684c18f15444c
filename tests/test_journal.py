"""Nothing paid is ever lost: every job is in the journal before anything is waited for, an
ambiguous submit is never sent twice, and `kling status` finishes what was interrupted."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import kling_command


def submits(emu: Emulator, provider: str) -> list:
    if provider == "runware":
        return [
            r
            for r in emu.requests
            if r.server == "api" and r.json()[0]["taskType"] == "imageInference"
        ]
    return [r for r in emu.requests if r.server == "api" and r.method == "POST"]


def test_jobs_lists_every_job_with_its_outcome(run_cli, use_emulator: Emulator) -> None:
    assert run_cli("generate", "a red fox", "-p", "runware").exit_code == 0
    use_emulator.inject("unifically", Fault(kind="task_failure", message="No foxes allowed"))
    assert run_cli("generate", "a grey wolf", "-p", "unifically").exit_code == 3
    jobs = run_cli("jobs", "--json").json()["jobs"]
    assert [(job["provider"], job["state"], job["prompt"]) for job in jobs] == [
        ("unifically", "failed", "a grey wolf"),
        ("runware", "succeeded", "a red fox"),
    ]
    table = run_cli("jobs").stdout
    assert "failed" in table and "succeeded" in table and "a grey wolf" in table
    assert [job["id"] for job in run_cli("jobs", "--state", "failed", "--json").json()["jobs"]] == [
        jobs[0]["id"]
    ]
    shown = run_cli("jobs", "show", jobs[1]["id"], "--json").json()["job"]
    assert shown["request"]["prompt"] == "a red fox"
    [task] = shown["tasks"]
    [output] = task["outputs"]
    assert Path(output["path"]).exists() and output["width"] == 1024


def test_jobs_prints_one_line_a_job_in_a_pipe(
    run_cli, use_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what a pipe gets
    prompt = "a lighthouse in fog over a rocky shore at night"
    assert run_cli("generate", prompt, "-p", "runware").exit_code == 0
    [job] = run_cli("jobs", "--json").json()["jobs"]
    header, row = run_cli("jobs").stdout.splitlines()
    assert header.startswith("ID") and row.startswith(job["id"] + " ")
    assert "a lighthouse" in row and row.rstrip().endswith("…")


def test_the_journal_never_holds_a_key(
    run_cli, use_emulator: Emulator, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_RUNWARE_API_KEY", "sk-secret-runware-key-000111")
    use_emulator.api_key = "sk-secret-runware-key-000111"
    assert run_cli("generate", "a red fox", "-p", "runware").exit_code == 0
    database = isolated_environment / "jobs.sqlite3"
    assert database.exists()
    assert (database.stat().st_mode & 0o077) == 0
    dump = "\n".join(sqlite3.connect(database).iterdump())
    assert "sk-secret-runware-key-000111" not in dump


def test_a_lost_submit_answer_is_looked_up_not_resubmitted(run_cli, use_emulator: Emulator) -> None:
    # The task is created (and paid for), then the answer is lost on the way back.
    use_emulator.inject("runware", Fault(kind="lost_response", on="submit"))
    result = run_cli("generate", "a red fox", "-p", "runware")
    assert result.exit_code == 0, result.stderr
    assert "checking whether the job exists" in result.stderr
    assert len(submits(use_emulator, "runware")) == 1
    assert Path(result.stdout.strip()).exists()


def test_a_dropped_submit_is_never_sent_again(run_cli, use_emulator: Emulator) -> None:
    # The connection drops and the task never appears: kling cannot know it was not created,
    # so it says it may have been, keeps the job, and does not submit again.
    use_emulator.inject("runware", Fault(kind="drop_connection", on="submit"))
    result = run_cli("generate", "a red fox", "-p", "runware", "--json")
    assert result.exit_code == 1
    assert "it may still have been created and charged" in result.json()["error"]["message"]
    assert len(submits(use_emulator, "runware")) == 1
    [job] = run_cli("jobs", "--json").json()["jobs"]
    assert job["state"] == "may_exist"


def test_status_says_when_a_lost_submit_never_arrived(run_cli, use_emulator: Emulator) -> None:
    use_emulator.inject("runware", Fault(kind="drop_connection", on="submit"))
    assert run_cli("generate", "a red fox", "-p", "runware").exit_code == 1
    soon = run_cli("status", "--json")  # right after: it may still be on its way
    assert soon.json()["job"]["tasks"][0]["error"].startswith("not received by the provider yet")
    with sqlite3.connect(Path(os.environ["KLING_CONFIG_DIR"]) / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET created_at = created_at - 3600")  # an hour later
    result = run_cli("status", "--json")
    assert result.exit_code == 0, result.stderr
    job = result.json()["job"]
    assert job["state"] == "not_created"
    assert job["tasks"][0]["error"] == "never received by the provider: nothing was charged"
    assert "nothing was charged" in run_cli("status").stderr
    assert len(submits(use_emulator, "runware")) == 1


def test_a_lost_submit_first_asked_about_days_later_is_never_called_not_created(
    run_cli, use_emulator: Emulator
) -> None:
    # Unknown two days later proves nothing: the provider may have made the task and forgotten
    # it since (its retention is undocumented), so nothing says "nothing was charged".
    use_emulator.inject("runware", Fault(kind="drop_connection", on="submit"))
    assert run_cli("generate", "a red fox", "-p", "runware").exit_code == 1
    with sqlite3.connect(Path(os.environ["KLING_CONFIG_DIR"]) / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET created_at = created_at - 2 * 86400")
    result = run_cli("status", "--json")
    job = result.json()["job"]
    assert job["state"] == "may_exist", job
    assert "may have been charged" in job["tasks"][0]["error"]
    assert "nothing was charged" not in run_cli("status").stderr
    assert len(submits(use_emulator, "runware")) == 1


def test_an_ambiguous_submit_without_a_client_id_is_recorded_as_may_exist(
    run_cli, use_emulator: Emulator
) -> None:
    use_emulator.inject("unifically", Fault(kind="lost_response", on="submit"))
    result = run_cli("generate", "a red fox", "-p", "unifically", "--json")
    assert result.exit_code == 1
    assert "may have been created and charged" in result.json()["error"]["message"]
    assert len(submits(use_emulator, "unifically")) == 1
    [job] = run_cli("jobs", "--json").json()["jobs"]
    assert job["state"] == "may_exist"


@pytest.mark.parametrize("fault", ["malformed_json", "html_error_page", "server_error"])
def test_a_bad_status_answer_is_retried(run_cli, use_emulator: Emulator, fault: str) -> None:
    use_emulator.inject("unifically", Fault(kind=fault, on="poll"))
    result = run_cli("generate", "a red fox", "-p", "unifically")
    assert result.exit_code == 0, result.stderr
    assert "retrying" in result.stderr


def test_bad_answers_to_the_end_leave_the_job_resumable(run_cli, use_emulator: Emulator) -> None:
    # Five bad answers: as many as the retry policy tries before giving up.
    use_emulator.inject("unifically", Fault(kind="html_error_page", on="poll", times=5))
    result = run_cli("generate", "a red fox", "-p", "unifically", "--json")
    assert result.exit_code == 1
    body = result.json()
    job_id = body["job"]["id"]
    assert body["job"]["task_id"]
    assert use_emulator.pending_faults() == []  # the provider has recovered
    resumed = run_cli("status", job_id, "--wait", "--download", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert len(resumed.json()["files"]) == 1


def test_status_of_a_task_submitted_elsewhere(run_cli, use_emulator: Emulator) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "unifically", "--no-wait", "--json")
    task_id = submitted.json()["job"]["task_id"]
    (Path(os.environ["KLING_CONFIG_DIR"]) / "jobs.sqlite3").unlink()  # another machine
    result = run_cli("status", task_id, "-p", "unifically", "--wait", "--download", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["job"]["tasks"][0]["task_id"] == task_id
    assert len(result.json()["files"]) == 1


def test_an_adopted_task_remembers_the_folder_its_images_went_to(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    submitted = run_cli("generate", "a red fox", "-p", "unifically", "--no-wait", "--json")
    task_id = submitted.json()["job"]["task_id"]
    (Path(os.environ["KLING_CONFIG_DIR"]) / "jobs.sqlite3").unlink()  # another machine
    elsewhere = tmp_path / "from-ci"
    fetched = run_cli(
        "status",
        task_id,
        "-p",
        "unifically",
        "--wait",
        "--download",
        "-o",
        str(elsewhere),
        "--json",
    )
    assert fetched.exit_code == 0, fetched.stderr
    job_id = fetched.json()["job"]["id"]
    saved = Path(fetched.json()["files"][0]["path"]).resolve()
    assert saved.parent == elsewhere.resolve()
    saved.unlink()  # lost since: fetched again, into the folder the job was adopted with
    again = run_cli("status", job_id, "--download", "--json")
    assert again.exit_code == 0, again.stderr
    assert Path(again.json()["files"][0]["path"]).resolve().parent == elsewhere.resolve()


def test_status_without_a_known_id_says_what_to_do(run_cli) -> None:
    assert "No jobs yet" in run_cli("status").stderr
    result = run_cli("status", "abc123")
    assert result.exit_code == 2
    assert "add --provider" in result.stderr


# -- separate processes: crashes, Ctrl-C, concurrency ------------------------------------------


@pytest.fixture
def standalone_emulator(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`kling emulate` in its own process, and the environment that points kling at it."""
    server = subprocess.Popen(
        [*kling_command(), "emulate", "--port", "0", "--latency", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert server.stdout is not None
    base_url = None
    deadline = time.monotonic() + 20
    while base_url is None and time.monotonic() < deadline:
        base_url = next(
            (w for w in server.stdout.readline().split() if w.endswith("/runware/v1")), None
        )
    assert base_url
    # The submit takes a while on the provider's side, so a stop right after kling prints
    # "submitting" lands while the request is in flight: the task exists, its answer is lost.
    control = base_url.split("/runware")[0]
    fault = {"kind": "slow", "on": "submit", "delay": 1.5}
    httpx.post(f"{control}/_emulator/faults", params={"provider": "runware"}, json=fault)
    yield {
        **os.environ,
        "KLING_RUNWARE_BASE_URL": base_url,
        "KLING_RUNWARE_API_KEY": "emulator-key",
        "KLING_CONFIG_DIR": str(tmp_path / "config"),
    }
    server.send_signal(signal.SIGINT)
    server.wait(timeout=10)


def start_generation(env: dict[str, str], out: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*kling_command(), "generate", "a red fox", "-p", "runware", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    line = ""
    while "submit" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()
    assert "submit" in line
    time.sleep(0.5)  # the request is on its way
    return process


def run_kling(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kling_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_sigkill_while_polling_then_status_resumes(
    standalone_emulator: dict[str, str], tmp_path: Path
) -> None:
    process = start_generation(standalone_emulator, tmp_path / "out")
    process.kill()
    process.wait(timeout=10)
    resumed = run_kling(standalone_emulator, "status", "--wait", "--download", "--json")
    assert resumed.returncode == 0, resumed.stderr
    body = json.loads(resumed.stdout)
    assert body["job"]["state"] == "succeeded"
    [entry] = body["files"]
    assert Path(entry["path"]).parent == tmp_path / "out"
    with Image.open(entry["path"]) as image:
        assert image.size == (1024, 1024)


def test_ctrl_c_prints_the_resume_command_and_it_works(
    standalone_emulator: dict[str, str], tmp_path: Path
) -> None:
    process = start_generation(standalone_emulator, tmp_path / "out")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    resume = next(line for line in stderr.splitlines() if "kling status" in line)
    command = resume[resume.index("kling status") :].split()
    resumed = run_kling(standalone_emulator, *command[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert list((tmp_path / "out").glob("*.png"))


def test_two_processes_at_once(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KLING_CONFIG_DIR": str(tmp_path / "config"),
        "KLING_EMULATOR_LATENCY": "0.5",
    }
    args = [
        *kling_command(),
        "generate",
        "a red fox",
        "--emulate",
        "-n",
        "2",
        "-o",
        str(tmp_path / "out"),
    ]
    first = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    second = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    outputs = [process.communicate(timeout=60) for process in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    paths = [line for out, _ in outputs for line in out.split()]
    assert len(paths) == 4 and len(set(paths)) == 4
    assert len(list((tmp_path / "out").glob("*.png"))) == 4
    jobs = json.loads(run_kling(env, "jobs", "--json").stdout)["jobs"]
    assert [job["state"] for job in jobs] == ["succeeded", "succeeded"]


def test_an_image_redirected_to_another_host_gets_no_credentials(
    run_cli, use_emulator: Emulator
) -> None:
    use_emulator.inject("images", Fault(kind="redirect_to_other_host"))
    result = run_cli("generate", "a red fox", "-p", "runware")
    assert result.exit_code == 0, result.stderr
    first, second = [r for r in use_emulator.requests if r.server == "images"]
    assert second.headers["host"].startswith("localhost:")
    assert "authorization" not in first.headers and "authorization" not in second.headers


@pytest.mark.parametrize("provider", ["runware", "unifically"])
def test_a_submit_read_timeout_is_never_resubmitted(emulator: Emulator, provider: str) -> None:
    import asyncio

    import httpx

    from kling_cli.emulator import EMULATOR_API_KEY
    from kling_cli.engine import Engine
    from kling_cli.errors import NetworkError
    from kling_cli.providers import get_provider
    from kling_cli.providers.base import Endpoint, TaskState
    from kling_cli.request import build_request
    from kling_cli.transport import HttpClients

    emulator.inject(provider, Fault(kind="slow", on="submit", delay=1.5))
    request = build_request(prompt="a red fox")

    async def submit() -> TaskState:
        clients = HttpClients.create(timeout=httpx.Timeout(0.5))
        endpoint = Endpoint(emulator.base_url(provider), EMULATOR_API_KEY)
        try:
            engine = Engine(get_provider(provider), endpoint, clients=clients)
            _, status = await engine.submit(request)
            return status.state
        finally:
            await clients.aclose()

    if provider == "runware":
        # Runware's taskUUID is ours: the task is found once it lands, and the job goes on.
        assert asyncio.run(submit()) in (TaskState.PENDING, TaskState.RUNNING, TaskState.SUCCEEDED)
    else:
        with pytest.raises(NetworkError, match="may have been created and charged"):
            asyncio.run(submit())
    time.sleep(1.2)  # let the slow submit land on the emulator's side
    assert len(submits(emulator, provider)) == 1


def _open_and_record(path: str, barrier: Any, results: Any) -> None:
    from kling_cli.journal import Journal

    barrier.wait()
    try:
        journal = Journal(Path(path))
        journal.create_job("runware", {}, "/tmp")
        journal.close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(repr(exc))


def test_processes_creating_the_journal_at_the_same_moment_all_succeed(tmp_path: Path) -> None:
    # A fresh journal file is switched to WAL by whichever process gets there first; the
    # others used to be refused with "database is locked" in about 40% of these rounds.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_number in range(12):
        path = str(tmp_path / f"round{round_number}" / "jobs.sqlite3")
        barrier, results = context.Barrier(3), context.Queue()
        processes = [
            context.Process(target=_open_and_record, args=(path, barrier, results))
            for _ in range(3)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=30)
        assert [results.get(timeout=5) for _ in processes] == ["ok"] * 3
