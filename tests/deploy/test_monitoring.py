"""monitoring/: promtool checks of the config and rules, the rules' unit tests, and a live Prometheus (Debian
binary, free loopback port) running monitoring/prometheus.yml re-pointed at two stand-in agents (the agent's
real HttpServer and metrics) and a real HAProxy: targets up, rules healthy, a rule firing live, and every
Grafana panel query answered without error and with data."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from deploy_support import ROOT, free_port, get_json, haproxy, require_tool, standin_agent, stop_process, wait_until

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; scripts/lib/tools.sh installs it")

MONITORING = ROOT / "monitoring"
GRAFANA = MONITORING / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Grafana's macros and the dashboards' template variable, replaced as Grafana would before querying.
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$color": ".*"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=60)


def test_promtool_check_config() -> None:
    result = promtool("check", "config", str(MONITORING / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(MONITORING / "alert_rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    result = promtool("test", "rules", *map(str, sorted((MONITORING / "tests").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load((MONITORING / "alert_rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"ALDSystemDown", "ALDPlcConnectionLost", "ALDLoggingIntervalHigh", "ALDMemoryHigh", "ALDSpoolGrowing",
            "ALDSpoolQuarantineNotEmpty", "ALDCommandLatencyHigh", "ALDStandbyMissing",
            "ALDCloudCredentialsRejected", "ALDCloudKeyExpiringSoon"} <= alerts  # fmt: skip
    fired: set[str] = set()
    for path in (MONITORING / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            fired |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert alerts == fired


# --- Grafana provisioning -------------------------------------------------------------------------------------


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard/panel/refId, PromQL with macros substituted) for every target of every panel."""
    queries = []
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for macro, value in MACROS.items():
                    expr = expr.replace(macro, value)
                assert "$" not in expr, f"unknown variable in {path.name} {panel['title']}: {expr}"
                queries.append((f"{path.stem}/{panel['title']}/{target['refId']}", expr))
    return queries


def test_dashboards_are_the_four_promised() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {"ALD · System Overview", "ALD · PLC Monitoring", "ALD · Performance", "ALD · Alerts"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_structure(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    known_uids = {ds["uid"] for ds in datasources}
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys() and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in known_uids
        assert panel["targets"], f"panel {panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in known_uids and target["expr"].strip()


def test_dashboard_uids_unique_and_provider_path_is_mounted() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/ald-agent.yml").read_text())["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.prod.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    mounts = dict(volume.split(":")[:2] for volume in volumes)  # host:container[:ro]
    for provider in providers:
        assert mounts.get("./monitoring/grafana/dashboards") == provider["options"]["path"]


def test_panel_queries_parse_offline(tmp_path: Path) -> None:
    """Every panel query as a recording rule: promtool check rules is a PromQL parser that needs no server."""
    rules = [{"record": f"dash:q{i}", "expr": expr} for i, (_, expr) in enumerate(panel_queries())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))  # JSON is YAML
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- live Prometheus ------------------------------------------------------------------------------------------


@contextmanager
def prometheus_server(
    tmp: Path,
    *,
    blue_port: int,
    green_port: int | None,
    stats_port: int | None,
    alertmanager: str | None = None,
    rules: Path = MONITORING / "alert_rules.yml",
) -> Iterator[str]:
    """Prometheus on a free port with monitoring/prometheus.yml and `rules`, its targets re-pointed at the given
    agent ports and HAProxy's stats port (a job whose targets are not given is left out: the TLS probe), its
    alerts sent to `alertmanager` (host:port) or nowhere; 1 s scrape and evaluation. Yields its URL."""
    binary = require_tool("prometheus")
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]
    address = {
        "ald-control-blue:8000": f"127.0.0.1:{blue_port}",
        "ald-control-green:8000": None if green_port is None else f"127.0.0.1:{green_port}",
        "haproxy:8404": None if stats_port is None else f"127.0.0.1:{stats_port}",
    }
    jobs = []
    for job in config["scrape_configs"]:
        statics = []
        for static in job["static_configs"]:
            targets = [address.get(t) for t in static["targets"]]
            if all(targets):
                statics.append(static | {"targets": targets})
        if statics:
            jobs.append(job | {"static_configs": statics})
    config["scrape_configs"] = jobs
    if alertmanager is None:
        config.pop("alerting", None)
    else:
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus running monitoring/prometheus.yml and alert_rules.yml, targets re-pointed at live stand-ins."""
    tmp = tmp_path_factory.mktemp("prometheus")
    with (
        standin_agent(tmp, color="blue", version="1.0.0", quarantined=2) as blue,
        standin_agent(tmp, color="green", version="1.1.0") as green,
        haproxy(tmp, blue_port=blue.port, green_port=green.port) as lb,
    ):
        wait_until(lambda: lb.up("blue"), timeout=10, what="blue UP")
        for _ in range(5):  # HAProxy exports per-server HTTP counters once the server has answered requests
            get_json(f"http://127.0.0.1:{lb.http_port}/health/basic")
        with prometheus_server(tmp, blue_port=blue.port, green_port=green.port, stats_port=lb.stats_port) as url:

            def all_up() -> bool:
                try:
                    status, body = get_json(f"{url}/api/v1/targets")
                except OSError:
                    return False
                targets = body.get("data", {}).get("activeTargets", []) if status == 200 else []
                return len(targets) == 3 and all(t["health"] == "up" for t in targets)

            wait_until(all_up, timeout=30, interval=0.5, what="3 targets up")
            for counter in ("ald_frames_total", "haproxy_server_http_responses_total"):  # two samples each
                wait_until(lambda c=counter: query(url, f"rate({c}[1m])"), timeout=15, interval=0.5, what=counter)
            yield url


def query(url: str, expr: str) -> list:
    status, body = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200 and body["status"] == "success", f"{expr}: {body.get('error')}"
    return body["data"]["result"]


def test_targets_carry_job_and_color(prometheus: str) -> None:
    result = query(prometheus, 'up{job="ald-agent"} == 1')
    assert sorted(r["metric"]["color"] for r in result) == ["blue", "green"]
    info = query(prometheus, 'agent_build_info{job="ald-agent"}')
    assert {(r["metric"]["color"], r["metric"]["version"]) for r in info} == {("blue", "1.0.0"), ("green", "1.1.0")}


def test_rules_load_healthy_and_alert_live(prometheus: str) -> None:
    _, body = get_json(f"{prometheus}/api/v1/rules")
    rules = [rule for group in body["data"]["groups"] for rule in group["rules"]]
    assert len(rules) >= 8 and all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]

    def quarantine_alert() -> list:
        return query(prometheus, 'ALERTS{alertname="ALDSpoolQuarantineNotEmpty"}')

    alerts = wait_until(quarantine_alert, timeout=15, interval=0.5, what="ALDSpoolQuarantineNotEmpty pending")
    assert {a["metric"]["color"] for a in alerts} == {"blue"}  # only blue has quarantined records


# Panels whose series only exist while some alert is *firing* (for: ≥ 1 min) may be empty in a short test.
MAY_BE_EMPTY = re.compile(r'ALERTS\{alertstate="firing"\}$')


@pytest.mark.parametrize(("where", "expr"), panel_queries(), ids=[w for w, _ in panel_queries()])
def test_panel_query_runs_with_data(prometheus: str, where: str, expr: str) -> None:
    result = query(prometheus, expr)
    assert result or MAY_BE_EMPTY.search(expr), f"{where}: no data for {expr}"


# --- Alertmanager ------------------------------------------------------------------------------------------------

ALERTMANAGER_CONFIG = MONITORING / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("amtool"), *args], capture_output=True, text=True, timeout=30)


def test_alertmanager_config_checks() -> None:
    result = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "2 receivers" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [(["severity=critical", "alertname=ALDPlcConnectionLost"], "oncall"),
     (["severity=warning", "alertname=ALDSpoolGrowing"], "team"),
     (["alertname=SomethingNew"], "team")],
    ids=["critical-pages", "warning-to-the-team", "no-severity-still-reaches-someone"],
)  # fmt: skip
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
    assert (result.returncode, result.stdout.strip()) == (0, receiver), result.stderr


def test_every_severity_of_the_rules_has_a_route() -> None:
    severities = set(re.findall(r"severity: (\w+)", (MONITORING / "alert_rules.yml").read_text()))
    assert severities == {"critical", "warning"}
    for severity in severities:
        out = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", f"severity={severity}")
        assert out.stdout.strip() == {"critical": "oncall", "warning": "team"}[severity]


def test_prometheus_sends_alerts_to_alertmanager_and_probes_the_certificate() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    (tls,) = [job for job in config["scrape_configs"] if job["job_name"] == "tls"]
    assert tls["static_configs"][0]["targets"] == ["haproxy:8443"] and tls["params"]["module"] == ["tls_connect"]
    assert "tls_connect" in yaml.safe_load((MONITORING / "blackbox.yml").read_text())["modules"]
