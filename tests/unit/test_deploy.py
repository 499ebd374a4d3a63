"""The files in deploy/ are importable as they are and ask only for metrics the gateway exports."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from seekgate.telemetry.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "seekgate.json"

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: every identifier that is not a function,
    a keyword, a label name (in braces or a by/without list), a range, or inside a string."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = re.sub(r"\$\w+", " ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def test_the_expression_parser_finds_metrics_not_functions_labels_or_keywords():
    expr = (
        'histogram_quantile(0.95, sum by (task, le) (rate(seekgate_request_duration_seconds_bucket{instance=~"$instance", '
        'task!="a b"}[$__rate_interval]))) / on(task) group_left sum without (x) (up offset 5m) or vector(0)'
    )
    assert metric_names(expr) == {"seekgate_request_duration_seconds_bucket", "up"}


def exported() -> dict[str, str]:
    """Every metric family a real Metrics registers, name -> type."""
    metrics = Metrics(tasks=[], models=[], backends=[], registry=CollectorRegistry())
    return {family.name: family.type for family in metrics.registry.collect()}


def is_exported(name: str, families: dict[str, str]) -> bool:
    """Counters are queried as NAME_total, histograms as NAME_bucket, _sum or _count."""
    if families.get(name) in ("gauge", "unknown"):
        return True
    for suffix, kinds in (
        ("_total", ("counter",)),
        ("_bucket", ("histogram",)),
        ("_sum", ("histogram", "summary")),
        ("_count", ("histogram", "summary")),
    ):
        if name.endswith(suffix) and families.get(name.removesuffix(suffix)) in kinds:
            return True
    return False


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return out


def test_every_dashboard_query_names_metrics_the_gateway_exports():
    dashboard = json.loads(DASHBOARD.read_text())
    families = exported()
    assert len(families) >= 12
    queried: set[str] = set()
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        exprs = [t["expr"] for t in panel["targets"]]
        assert exprs, f"panel {panel['title']!r} has no query"
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"panel {panel['title']!r}: no metric in {expr!r}"
            unknown = {n for n in names if not is_exported(n, families)}
            assert not unknown, f"panel {panel['title']!r} queries {sorted(unknown)}, which the gateway does not export"
            queried |= names
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            (name,) = re.findall(r"label_values\((\w+)", variable["definition"])
            assert is_exported(name, families)
    # And the dashboard shows every family (so a new metric gets a panel).
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in queried}
    assert set(families) <= shown, f"no panel shows {sorted(set(families) - shown)}"


def test_the_dashboard_imports_as_is():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" and t["refId"] for t in panel["targets"])


def test_prometheus_scrapes_the_gateways_metrics_path():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "seekgate"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets and all(re.fullmatch(r"[\w.-]+:\d+", t) for t in targets)


@pytest.mark.parametrize(
    "path",
    ["docker-compose.yml", "grafana/provisioning/datasources/prometheus.yml", "grafana/provisioning/dashboards/seekgate.yml"],
)
def test_the_compose_files_parse_and_mount_files_that_exist(path: str):
    data = yaml.safe_load((DEPLOY / path).read_text())
    assert data
    if path == "docker-compose.yml":
        for service in data["services"].values():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("./"):
                    assert (DEPLOY / source).exists(), volume
