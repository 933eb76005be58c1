"""The template is valid CloudFormation: cfn-lint reports nothing, not even a warning."""

from pathlib import Path

from cfnlint.api import lint_file

ROOT = Path(__file__).resolve().parents[2]


def test_given_the_template_when_cfn_lint_runs_then_it_reports_no_errors_and_no_warnings():
    matches = lint_file(ROOT / "template.yaml")

    assert [str(match) for match in matches] == []
