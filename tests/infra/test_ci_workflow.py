"""The CI/CD workflows keep their contract: every push tested, only main deployed, dev before an approved prod,
AWS reached through OIDC role assumption alone, third-party actions pinned (docs/deploy.md, "CI/CD")."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
DEPLOY_WORKFLOW = "./.github/workflows/deploy.yml"
ON_MAIN_PUSH = {"github.event_name == 'push'", "github.ref == 'refs/heads/main'"}
PINNED_BY_SHA = re.compile(r"^[^@\s]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as a boolean.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


CI = load(WORKFLOWS / "ci.yml")
DEPLOY = load(WORKFLOWS / "deploy.yml")
AUDIT = load(WORKFLOWS / "audit.yml")
DEPLOY_JOB = DEPLOY["jobs"]["deploy"]


def run_lines(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    [step] = [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]
    return step


def deploy_jobs() -> dict[str, dict[str, Any]]:
    return {name: job for name, job in CI["jobs"].items() if job.get("uses") == DEPLOY_WORKFLOW}


def test_given_any_push_or_pull_request_then_the_test_job_runs_the_ci_entry_point_unconditionally():
    triggers = CI["on"]
    test_job = CI["jobs"]["test"]

    assert set(triggers) >= {"push", "pull_request"}
    assert not triggers["push"] and not triggers["pull_request"], "no branch or path filter: every push is tested"
    assert "if" not in test_job
    assert any(".ci/run" in line for line in run_lines(test_job))


def test_given_the_test_job_then_it_has_python_3_12_node_20_redis_and_caches_keyed_on_the_locks():
    test_job = CI["jobs"]["test"]
    python = step_using(test_job, "actions/setup-python")["with"]
    node = step_using(test_job, "actions/setup-node")["with"]

    assert (python["python-version"], python["cache"], python["cache-dependency-path"]) == (
        "3.12",
        "pip",
        "requirements/dev.lock",
    )
    assert (node["node-version"], node["cache"], node["cache-dependency-path"]) == (
        "20",
        "npm",
        "local_stack/evm/package-lock.json",
    )
    assert any("redis-server" in line for line in run_lines(test_job))


def test_given_a_push_that_is_not_to_main_then_no_deploy_job_runs():
    jobs = deploy_jobs()

    assert set(jobs) == {"deploy-dev", "deploy-prod", "deploy-prod-eu-west-1"}
    for name, job in jobs.items():
        conditions = {condition.strip() for condition in job["if"].split("&&")}
        # prod's second region also waits until someone has filled in its samconfig and switched it on
        extra = {"vars.DEPLOY_PROD_EU_WEST_1 == 'true'"} if name == "deploy-prod-eu-west-1" else set()
        assert conditions == ON_MAIN_PUSH | extra, name


def test_given_main_then_tests_gate_dev_and_dev_gates_the_prod_environment():
    jobs = deploy_jobs()

    assert jobs["deploy-dev"]["needs"] == "test"
    assert jobs["deploy-dev"]["with"] == {"environment": "dev"}
    assert jobs["deploy-prod"]["needs"] == "deploy-dev"
    assert jobs["deploy-prod"]["with"] == {"environment": "prod"}
    # The GitHub environment carries prod's required reviewers: the deploy job must run in it.
    assert DEPLOY_JOB["environment"] == "${{ inputs.environment }}"


def test_given_a_deploy_then_aws_is_reached_by_assuming_the_environment_s_role_with_an_oidc_token():
    credentials = step_using(DEPLOY_JOB, "aws-actions/configure-aws-credentials")["with"]

    assert DEPLOY_JOB["permissions"] == {"id-token": "write", "contents": "read"}
    for job in deploy_jobs().values():
        assert job["permissions"] == {"id-token": "write", "contents": "read"}
    assert credentials == {
        "role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
        "aws-region": "${{ vars.AWS_REGION }}",
        "role-session-name": "deploy-${{ inputs.environment }}-${{ github.run_id }}",
    }


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_given_any_workflow_then_it_holds_no_aws_keys_and_reads_no_aws_secret(path):
    text = path.read_text().lower()

    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "aws-session-token", "secrets.aws_"):
        assert forbidden not in text


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_given_any_workflow_then_its_token_may_only_read_unless_a_job_deploys(path):
    workflow = load(path)

    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        if granted.get("id-token") == "write":
            assert path.name == "deploy.yml" or job.get("uses") == DEPLOY_WORKFLOW, name


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_given_any_third_party_action_then_it_is_pinned_to_a_commit_sha_with_its_version(path):
    uses = [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines() if "uses:" in line]
    third_party = [ref for ref in uses if not ref.startswith("./")]

    assert [ref for ref in third_party if not PINNED_BY_SHA.match(ref)] == []


def test_given_a_deploy_then_the_pinned_sam_cli_builds_then_deploys_the_environment_s_config_without_prompting():
    lines = run_lines(DEPLOY_JOB)
    build = next(index for index, line in enumerate(lines) if line.strip() == "sam build")
    deploy = next(index for index, line in enumerate(lines) if line.strip().startswith("sam deploy"))

    assert re.fullmatch(r"\d+\.\d+\.\d+", DEPLOY["env"]["SAM_CLI_VERSION"])
    assert any('"aws-sam-cli==$SAM_CLI_VERSION"' in line for line in lines)
    assert build < deploy
    assert lines[deploy].split() == [
        "sam",
        "deploy",
        "--config-env",
        '"$CONFIG_ENV"',
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "${CLOUDFORMATION_ROLE_ARN:+--role-arn",
        '"$CLOUDFORMATION_ROLE_ARN"}',
    ]
    [deploy_step] = [step for step in DEPLOY_JOB["steps"] if step.get("run") == lines[deploy]]
    assert deploy_step["env"] == {
        "CONFIG_ENV": "${{ inputs.environment }}",
        "CLOUDFORMATION_ROLE_ARN": "${{ vars.AWS_CLOUDFORMATION_ROLE_ARN }}",
    }


def test_given_two_deploys_of_one_environment_then_the_second_waits_for_the_first():
    assert DEPLOY_JOB["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False}


def test_given_a_run_for_a_commit_main_has_moved_past_then_its_deploy_stops_before_anything_else():
    first_step = DEPLOY_JOB["steps"][0]

    assert "repos/$REPOSITORY/commits/main" in first_step["run"]
    assert '"$head" != "$GITHUB_SHA"' in first_step["run"]
    assert "exit 1" in first_step["run"]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_given_an_environment_the_workflow_deploys_then_samconfig_defines_its_own_stack(environment):
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    parameters = samconfig[environment]["deploy"]["parameters"]

    assert parameters["stack_name"] == f"cross-chain-portfolio-{environment}"
    assert f"Stage={environment}" in parameters["parameter_overrides"]
    assert set(parameters["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}


def test_given_the_audit_workflow_then_it_requires_the_audit_on_pushes_pull_requests_and_a_schedule():
    [audit_job] = AUDIT["jobs"].values()

    assert set(AUDIT["on"]) >= {"push", "pull_request", "schedule"}
    assert "make audit AUDIT_REQUIRED=1" in run_lines(audit_job)
