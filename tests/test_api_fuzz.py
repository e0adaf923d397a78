"""A schema-driven fuzzer (schemathesis) against the live API: no 5xx, no answer outside the schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.services import job_create
from tests.api_support import fresh_throttles, no_dispatch, rates, token_for  # noqa: F401
from tests.factories import JobFactory, NamespaceFactory

ST = Path(sys.executable).with_name("st")
# What "conforms to the schema" means here; positive_data_acceptance is left out on purpose: the
# schema cannot express the reference grammar, so a schema-valid string is often a refused image.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


@pytest.mark.e2e
@pytest.mark.usefixtures("fresh_throttles", "no_dispatch")
def test_a_schema_driven_fuzzer_finds_no_server_error_and_no_answer_outside_the_schema(
    live_server, alice, staff, team_namespace, settings, tmp_path
):
    rates(settings, api="100000/minute", job_create="100000/minute")
    # alice has one namespace, so a job without one goes there and fuzzed sources really create jobs.
    NamespaceFactory(registry="localhost:5000", namespace="team", members=[staff])
    job_create(owner=alice, namespace=team_namespace, kind="copy", source="nginx:1.27")
    JobFactory(
        owner=alice,
        namespace=team_namespace,
        status="failed",
        source="docker.io/library/a:1",
        result={"copied": [{"tag": "1", "digest": "sha256:" + "a" * 64}], "failed": "not a list"},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS")}
    # alice everywhere; staff (who may list everyone's jobs) on the reading operations.
    for user, only in ((alice, []), (staff, ["--include-method", "GET"])):
        result = subprocess.run(
            [
                str(ST),
                "run",
                f"{live_server.url}/api/schema/",
                "--checks",
                CHECKS,
                "--header",
                f"Authorization: Bearer {token_for(user, name='fuzz')}",
                "--max-examples",
                "10",
                "--seed",
                "20261127",
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--generation-database",
                "none",
                "--request-timeout",
                "20",
                "--no-color",
                *only,
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, f"{user.email}:\n{result.stdout[-8000:]}\n{result.stderr[-2000:]}"
