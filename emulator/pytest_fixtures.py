"""pytest helpers: import the fixture into a test module (or a conftest) to use it.

from emulator.pytest_fixtures import github_emulator, write_workflow  # noqa: F401

def test_x(github_emulator, tmp_path):
    write_workflow(tmp_path, "hello.yml", WORKFLOW)
    emu = github_emulator(repo_root=tmp_path, secrets={"X": "y"})
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.core import GitHubEmulator

# Fast by default: tests wait on conditions, not on realistic GitHub latency.
TEST_DEFAULTS: dict[str, Any] = {
    "repository": "acme/imagesync",
    "token": "emulator-token",
    "requested_delay": 0.0,
    "queue_delay": 0.0,
    "kill_grace": 2.0,
    "shutdown_grace": 0.0,
}


def write_workflow(repo_root: Path, file_name: str, text: str) -> Path:
    """Write a workflow file under repo_root/.github/workflows (text is dedented)."""
    path = Path(repo_root) / ".github" / "workflows" / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def github_emulator(tmp_path: Path) -> Iterator[Callable[..., GitHubEmulator]]:
    """A factory: github_emulator(**GitHubEmulator kwargs) starts one; all are closed afterwards.
    repo_root defaults to the test's tmp_path."""
    started: list[GitHubEmulator] = []

    def make(**options: Any) -> GitHubEmulator:
        emulator = GitHubEmulator(**{"repo_root": tmp_path, **TEST_DEFAULTS, **options}).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        emulator.close()
