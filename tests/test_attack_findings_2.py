"""Second round of breaks of the money rule, each reproduced in real processes against the
emulator: --resubmit-unknown on a fan-out cut short, a submit that --timeout stopped before it
was sent, Ctrl-C in the Python API, and `kling batch merge` edge cases."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kling_cli.emulator import Emulator, Fault
from tests.test_entry_point import kling_command, run
from tests.test_money_rule import journal_rows, start


def _created(emulator: Emulator, provider: str) -> int:
    return sum(1 for event in emulator.events if event[1] == "created" and event[2] == provider)


def _wait_created(emulator: Emulator, provider: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while _created(emulator, provider) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _created(emulator, provider) >= count, "the emulator never created the tasks"


@pytest.mark.parametrize("provider", ["unifically", "runware"])
def test_a_submit_the_timeout_stopped_before_sending_is_not_created(
    use_emulator: Emulator, tmp_path: Path, isolated_environment: Path, provider: str
) -> None:
    """`kling batch m.jsonl -p unifically --timeout 1e-9`: the deadline has passed before the
    submit is sent, and the emulator receives nothing. Today the task is journalled `may_exist`
    ("the submit was not answered"), the generate message says "it may still be charged", and
    every later run skips the item as `unknown_outcome` (Unifically: until `--resubmit-unknown`,
    "which may charge twice"; Runware: for 10 minutes, after 5 lookups of a UUID never sent).
    README: a submit that provably never reached the provider is recorded `not_created`."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "prompt": "a fox"}) + "\n")
    out = tmp_path / "o"
    cut = run("batch", str(manifest), "-p", provider, "-o", str(out), "--timeout", "1e-9")
    assert cut.returncode == 8, cut.stderr
    assert _created(use_emulator, provider) == 0
    assert not any(b"imageInference" in r.body for r in use_emulator.requests)
    rows = journal_rows(isolated_environment)
    # Nothing left: no task was recorded as sent, so none "may exist".
    assert rows[0]["state"] == "not_created" and rows[0]["task_state"] in (None, "not_created")
    again = run("batch", str(manifest), "-p", provider, "-o", str(out), "--json")
    assert again.returncode == 0, again.stdout[-600:]
    assert _created(use_emulator, provider) == 1


def test_a_generate_the_timeout_stopped_before_sending_does_not_say_it_may_be_charged(
    use_emulator: Emulator,
) -> None:
    result = run("generate", "a fox", "-p", "unifically", "--timeout", "1e-9", "--json")
    assert result.returncode == 5
    assert _created(use_emulator, "unifically") == 0
    body = json.loads(result.stdout)
    told = body["error"]["message"] + (body["error"]["hint"] or "")
    assert "may still be charged" not in told and "Nothing was sent" in told


def test_ctrl_c_during_api_generate_names_the_paid_job(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """`kling_cli.generate(...)` interrupted by Ctrl-C after its tasks were submitted raises a
    bare `KeyboardInterrupt()` (api.py: `raise KeyboardInterrupt`) with no `.job` and nothing on
    stderr naming the job: the caller cannot learn the id of the job it paid for. README: an
    error raised after the submit carries the job in `error.job`."""
    use_emulator.latency = 1000
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import kling_cli\n"
            "try:\n"
            "    kling_cli.generate('a fox', provider='unifically', output_dir='o', num_images=2)\n"
            "except BaseException as e:\n"
            "    print('JOB', getattr(getattr(e, 'job', None), 'id', getattr(e, 'job', None)),"
            " flush=True)\n"
            "    raise\n",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_created(use_emulator, "unifically", 2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    rows = journal_rows(isolated_environment)
    job_id = rows[0]["id"]
    assert rows[0]["state"] == "interrupted" and rows[0]["task_id"]
    assert job_id in out or job_id in err, (out, err)


def _batch(manifest: Path, out: Path, *extra: str) -> None:
    result = run("batch", str(manifest), "-p", "runware", "-o", str(out), *extra)
    assert result.returncode == 0, result.stderr


def test_merge_copy_files_keeps_both_images_when_their_names_clash(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """Two shard folders whose items (ids a and b) were named by `--name same`: each has
    `same.png`. `kling batch merge s1 s2 -o out --copy-files` exits 0, copies one image and lists
    both items with `out/same.png`: item b's image is silently not in `out`."""
    for item_id, folder in (("a", "s1"), ("b", "s2")):
        manifest = tmp_path / f"{item_id}.jsonl"
        manifest.write_text(json.dumps({"id": item_id, "prompt": f"fox {item_id}"}) + "\n")
        _batch(manifest, tmp_path / folder, "--name", "same")
    result = subprocess.run(
        [*kling_command(), "batch", "merge", "s1", "s2", "-o", "out", "--copy-files", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode == 0:
        merged = json.loads((tmp_path / "out" / "manifest.json").read_text())
        paths = [f["path"] for item in merged["items"] for f in item["files"]]
        assert len(set(paths)) == 2, paths
        assert len(list((tmp_path / "out").glob("*.png"))) == 2
    else:
        assert result.returncode == 2, result.stdout


def test_merge_into_a_path_under_a_file_is_exit_2_not_a_bug(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """`kling batch merge s1 -o afile/x`: exit 1, "Unexpected NotADirectoryError ... This is a
    bug in kling-cli" (the generate/batch `-o` check says "a file, not a directory", exit 2)."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "prompt": "fox"}) + "\n")
    _batch(manifest, tmp_path / "s1")
    (tmp_path / "afile").write_text("x")
    result = subprocess.run(
        [*kling_command(), "batch", "merge", "s1", "-o", "afile/x", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout
    assert "bug" not in (json.loads(result.stdout)["error"]["hint"] or "")


def test_a_shard_of_a_manifest_with_an_invalid_line_pays_nothing(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """The manifest has a line Runware refuses (a 1-character prompt). Run as one batch it is
    refused before any request (exit 2). Run as a CI matrix with `--shard K/4`, only the shard
    holding the bad line refuses; the other shards exit 0 and submit and pay for their items,
    though the whole file was read and its mistake was knowable before paying (README: "one bad
    item fails the run (exit 2) naming its line and field, and nothing is spent")."""
    manifest = tmp_path / "m.jsonl"
    lines = [{"id": f"item{n}", "prompt": f"a red fox number {n}"} for n in range(8)]
    lines.append({"id": "bad", "prompt": "x"})
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    whole = run("batch", str(manifest), "-p", "runware", "-o", str(tmp_path / "whole"))
    assert whole.returncode == 2
    codes = [
        run(
            "batch",
            str(manifest),
            "-p",
            "runware",
            "-o",
            str(tmp_path / f"s{k}"),
            "--shard",
            f"{k}/4",
        ).returncode
        for k in range(1, 5)
    ]
    assert _created(use_emulator, "runware") == 0, codes
    assert codes == [2, 2, 2, 2]


def test_sync_generate_inside_a_running_loop_leaves_no_phantom_job(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """`kling_cli.generate(...)` called from inside a running event loop (a notebook, an async
    service) raises a bare `RuntimeError: asyncio.run() cannot be called from a running event
    loop` (not one of kling_cli.errors, with a "coroutine was never awaited" warning), after
    writing a job to the journal in state `submitting` with no task, which nothing ever sent.
    `kling status ID --wait --download` then answers exit 0, "status": "success", state
    `submitting`, no files. Expected: refused before the journal is touched (or recorded as
    never submitted), with the error naming `agenerate`; status does not call it a success."""
    script = (
        "import asyncio, kling_cli\n"
        "from kling_cli.errors import KlingError\n"
        "async def main():\n"
        "    try:\n"
        "        kling_cli.generate('a fox', provider='runware', output_dir='o')\n"
        "    except KlingError as e:\n"
        "        print('KLING', type(e).__name__, e)\n"
        "    except BaseException as e:\n"
        "        print('OTHER', type(e).__name__, e)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert not any(r.server == "api" for r in use_emulator.requests)
    rows = (
        journal_rows(isolated_environment)
        if (isolated_environment / "jobs.sqlite3").exists()
        else []
    )
    for row in rows:
        status = run("status", row["id"], "--wait", "--download", "--json", "--timeout", "5")
        body = json.loads(status.stdout)
        assert not (status.returncode == 0 and body["job"]["state"] == "submitting"), status.stdout
    assert result.stdout.startswith("KLING"), result.stdout + result.stderr
    assert "agenerate" in result.stdout


def test_merge_copy_files_with_an_image_missing_is_not_a_bug(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """A shard artifact arrived without one of its images (s2/b.png deleted). `kling batch merge
    s1 s2 -o out --copy-files` exits 1, "Unexpected FileNotFoundError ... This is a bug", after
    copying s1's image into `out` and writing no manifest. Expected: a documented exit code
    (2, or 7 for a file that cannot be saved) naming the missing file, not a crash."""
    for item_id, folder in (("a", "s1"), ("b", "s2")):
        manifest = tmp_path / f"{item_id}.jsonl"
        manifest.write_text(json.dumps({"id": item_id, "prompt": f"fox {item_id}"}) + "\n")
        _batch(manifest, tmp_path / folder)
    (tmp_path / "s2" / "b.png").unlink()
    result = subprocess.run(
        [*kling_command(), "batch", "merge", "s1", "s2", "-o", "out", "--copy-files", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    body = json.loads(result.stdout)
    assert result.returncode != 1, result.stdout
    assert "bug" not in ((body.get("error") or {}).get("hint") or "")


def test_status_of_a_fan_out_cut_mid_submit_is_not_a_plain_success(
    use_emulator: Emulator, isolated_environment: Path
) -> None:
    """`kling generate fox -p unifically -n 4` is SIGKILLed while its third submit is in flight.
    `kling status ID --wait --download --json` then saves the two known images and answers
    exit 0, "status": "success", with job state `may_exist`, task 3 still `submitting` (its
    process is gone) and `never_requested: 1`: two of four images, one task that may have been
    charged, reported as a success. `kling batch` calls the same item not done (exit 8)."""
    use_emulator.inject("unifically", Fault(kind="slow", on="submit", delay=1.0, times=4))
    process = start("generate", "a fox", "-p", "unifically", "-n", "4", "-o", "o", "--json")
    _wait_created(use_emulator, "unifically", 2)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    time.sleep(1.5)
    job_id = journal_rows(isolated_environment)[0]["id"]
    result = run("status", job_id, "--wait", "--download", "--json", "--timeout", "20")
    body = json.loads(result.stdout)
    assert len(body["files"]) == 2
    assert result.returncode != 0 and body["status"] == "error", result.stdout
    states = [task["state"] for task in body["job"]["tasks"]]
    assert "submitting" not in states, states


def test_merge_copy_files_into_a_shard_folder_never_overwrites_its_images(
    use_emulator: Emulator, tmp_path: Path
) -> None:
    """`kling batch merge s1 s2 -o s1 --copy-files` (collect into the first shard's folder):
    both shards named their image `same.png` (`--name same`). The merge copies s2/same.png over
    s1/same.png (`shutil.copy2` onto an existing file), destroying item a's paid image, and the
    manifest lists both items at the one file. README: existing files are never overwritten."""
    for item_id, folder, aspect in (("a", "s1", "1:1"), ("b", "s2", "16:9")):
        manifest = tmp_path / f"{item_id}.jsonl"
        manifest.write_text(json.dumps({"id": item_id, "prompt": f"fox {item_id}"}) + "\n")
        _batch(manifest, tmp_path / folder, "--name", "same", "-a", aspect)
    original = (tmp_path / "s1" / "same.png").read_bytes()
    assert original != (tmp_path / "s2" / "same.png").read_bytes()
    subprocess.run(
        [*kling_command(), "batch", "merge", "s1", "s2", "-o", "s1", "--copy-files", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    kept = [hash(p.read_bytes()) for p in (tmp_path / "s1").glob("*.png")]
    assert hash(original) in kept, "item a's image was overwritten"
