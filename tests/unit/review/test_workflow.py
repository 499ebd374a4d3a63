"""The GitHub Actions workflow in docs/ is valid YAML, asks for what posting needs, and runs
`seekgate review` with flags the command really has."""

import re
import shlex
from pathlib import Path

import yaml

from seekgate.cli.main import build_parser

WORKFLOW = Path(__file__).parents[3] / "docs" / "github-actions" / "seekgate-review.yml"


def test_the_shipped_workflow_posts_with_write_permission_on_the_pull_requests_head():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert flow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as True
    steps = flow["jobs"]["review"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    review = next(s for s in steps if "seekgate review" in s.get("run", ""))
    assert review["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"


def test_every_seekgate_command_in_the_workflow_parses():
    flow = yaml.safe_load(WORKFLOW.read_text())
    commands = [
        line.strip()
        for step in flow["jobs"]["review"]["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip().startswith("seekgate ")
    ]
    assert commands
    for command in commands:
        argv = shlex.split(re.sub(r"\$\{\{[^}]*\}\}", "X", command))[1:]
        args = build_parser().parse_args(argv)  # exits (SystemExit) on an unknown flag
        assert args.command == "review" and args.github
