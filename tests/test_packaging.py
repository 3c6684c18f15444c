"""What a user installs: the wheel built from this tree carries the license, the type marker,
the --json schemas and the project's metadata."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_license_types_schemas_and_metadata(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT), "-w", tmp_path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("kling_image_cli-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert {"kling_cli/py.typed", "kling_cli/schemas.json", "kling_cli/__main__.py"} <= set(names)
    assert metadata["License-Expression"] == "MIT"
    classifiers = metadata.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.13" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert metadata.get_all("Project-URL")
    requires = metadata.get_all("Requires-Dist") or []
    unbounded = [r for r in requires if "extra ==" not in r and "<" not in r]
    assert not unbounded, f"runtime dependencies without an upper bound: {unbounded}"


def test_the_readme_opens_with_two_commands_and_ci_runs_its_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```console\n", 1)[1].split("```", 1)[0]
    commands = [line[2:] for line in first_block.splitlines() if line.startswith("$ ")]
    assert len(commands) == 2, commands
    install_and_generate, install_and_test = commands
    assert "--emulate" in install_and_generate and "python3 -m venv" in install_and_generate
    assert "'.[test]'" in install_and_test and install_and_test.endswith("-m pytest -q")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci
