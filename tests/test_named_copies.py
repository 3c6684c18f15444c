"""Named copies: a built-in provider under a second id (a relay, a second account), declared
with `providers.<id>.copy_of`, with its own key, base URL and settings."""

from __future__ import annotations

from kling_cli.emulator import EMULATOR_API_KEY, Emulator


def make_relay(run_cli, emulator: Emulator) -> None:
    for setting, value in (
        ("copy_of", "kling"),
        ("auth", "bearer"),
        ("base_url", emulator.base_url("kling")),
    ):
        assert run_cli("config", "set", f"providers.relay.{setting}", value).exit_code == 0
    assert run_cli("config", "set-key", "relay", "--stdin", stdin="relay-key\n").exit_code == 0


def test_a_kling_relay_copy_sends_its_own_plain_key_to_its_own_host(
    run_cli, emulator: Emulator, monkeypatch
) -> None:
    make_relay(run_cli, emulator)
    # The official Kling account's variables must not leak into the copy.
    monkeypatch.setenv("KLING_ACCESS_KEY", "official-access")
    monkeypatch.setenv("KLING_SECRET_KEY", "official-secret")
    result = run_cli("generate", "a fox", "-p", "relay")
    # The emulator's Kling takes only JWTs, so it refuses the relay's plain key, as Kling would.
    assert result.exit_code == 4 and "relay: Authorization is invalid" in result.stderr
    assert "$KLING_RELAY_API_KEY" in result.stderr and "KLING_ACCESS_KEY" not in result.stderr
    [submit] = [r for r in emulator.requests if r.method == "POST"]
    assert submit.headers["authorization"] == "Bearer relay-key"
    assert submit.path == "/v1/images/omni-image"
    assert run_cli("jobs", "--json").json()["jobs"][0]["provider"] == "relay"


def test_a_copy_keeps_its_jobs_resumable(run_cli, use_emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv("KLING_SECOND_API_KEY", EMULATOR_API_KEY)  # its own key, not Unifically's
    assert run_cli("config", "set", "providers.second.copy_of", "unifically").exit_code == 0
    assert (
        run_cli(
            "config", "set", "providers.second.base_url", use_emulator.base_url("unifically")
        ).exit_code
        == 0
    )
    submitted = run_cli("generate", "a fox", "-p", "second", "--no-wait", "--json")
    assert submitted.exit_code == 0, submitted.stderr
    job_id = submitted.json()["job"]["id"]
    done = run_cli("status", job_id, "--wait", "--download", "--json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["job"]["provider"] == "second"
    assert done.json()["job"]["state"] == "succeeded"


def test_copies_are_listed_and_shown(run_cli, emulator: Emulator) -> None:
    make_relay(run_cli, emulator)
    listed = run_cli("providers", "--json").json()["providers"]
    [relay] = [row for row in listed if row["id"] == "relay"]
    assert relay["copy_of"] == "kling" and relay["key_source"] == "config file"
    assert relay["key_env_vars"] == ["KLING_RELAY_API_KEY"]
    shown = run_cli("providers", "show", "relay")
    assert "copy of           Kling (kling)" in shown.stdout
    assert "kling" in run_cli("providers", "--json").stdout  # the original is still there


def test_emulate_runs_a_copy_against_its_originals_emulator(run_cli) -> None:
    assert run_cli("config", "set", "providers.second.copy_of", "runware").exit_code == 0
    result = run_cli("generate", "a fox", "-p", "second", "--emulate", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["job"]["provider"] == "second"
    assert EMULATOR_API_KEY not in result.stdout + result.stderr


def test_bad_copies_are_refused_with_one_sentence(run_cli) -> None:
    unknown = run_cli("config", "set", "providers.x.copy_of", "nope")
    assert unknown.exit_code == 4 and "must name a built-in provider" in unknown.stderr
    builtin = run_cli("config", "set", "providers.fal.copy_of", "kling")
    assert builtin.exit_code == 4 and "fal is a built-in provider" in builtin.stderr
    bad_id = run_cli("config", "set", "providers.my-relay.copy_of", "kling")
    assert bad_id.exit_code == 4 and "lower-case letters" in bad_id.stderr
    assert run_cli("generate", "a fox", "-p", "x").exit_code == 2
