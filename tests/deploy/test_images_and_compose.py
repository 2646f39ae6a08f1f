"""Dockerfile (hadolint, structure, build context) and docker-compose.prod.yml (the real Compose v2 binary's
`config`, the compose-spec schema, the normalised model) without a Docker engine."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from deploy_support import ROOT, require_tool

from tests.support.design import DESIGN_VARIABLES

COMPOSE_FILE = ROOT / "docker-compose.prod.yml"
ENV_EXAMPLE = ROOT / "config/production.env.example"


def test_hadolint_clean() -> None:
    result = subprocess.run([require_tool("hadolint"), "--failure-threshold", "style", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all("slim" in s or s == "${PYTHON_IMAGE}" for s in stages)
    assert "python:3.11-slim" in text
    final = text.split("\nFROM ", 2)[2]
    assert "COPY --from=build /opt/ald-agent /opt/ald-agent" in final
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final), "no build tools in the final stage"
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert "/health/basic" in final.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert 'VOLUME ["/var/lib/ald-agent/spool"]' in final
    assert 'ENTRYPOINT ["python", "-m", "agent"]' in final and 'CMD ["run"]' in final


def test_healthcheck_probe_is_valid_python() -> None:
    line = next(ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip().startswith('CMD ["python"'))
    argv = json.loads(line.strip()[4:])
    compile(argv[2], "<healthcheck>", "exec")


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    sources = {src for line in copied for src in line.split()}
    assert sources <= allowed and all((ROOT / src).exists() for src in sources)


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_TAG_", "DOCKER_"))}
    base["DOCKER_HOST"] = "unix:///nonexistent.sock"  # prove no engine is needed
    return subprocess.run(
        [require_tool("docker-compose"), "-p", "ald-agent-test", "--env-file", str(ENV_EXAMPLE), "-f",
         str(COMPOSE_FILE), *args], env={**base, **(env or {})}, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


TAGS = {"AGENT_TAG_BLUE": "1.4.1", "AGENT_TAG_GREEN": "1.4.2"}


def test_compose_config_is_valid() -> None:
    result = compose("config", "-q", env=TAGS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["AGENT_TAG_BLUE", "AGENT_TAG_GREEN"])
def test_compose_requires_both_color_tags(missing: str) -> None:
    result = compose("config", "-q", env={k: v for k, v in TAGS.items() if k != missing})
    assert result.returncode == 1 and f"required variable {missing} is missing" in result.stderr


def test_compose_model() -> None:
    result = compose("config", "--format", "json", env=TAGS)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    services = model["services"]
    assert set(services) == {"ald-control-blue", "ald-control-green", "haproxy", "prometheus", "alertmanager",
                             "blackbox", "grafana"}  # fmt: skip
    for color, tag in (("blue", "1.4.1"), ("green", "1.4.2")):
        agent = services[f"ald-control-{color}"]
        assert agent["image"] == f"ald-agent:{tag}"
        assert agent["environment"]["AGENT_COLOR"] == color
        assert agent["restart"] == "unless-stopped"
        resources = agent["deploy"]["resources"]
        assert (resources["limits"]["cpus"], resources["limits"]["memory"]) == (2.0, "1073741824")
        assert (resources["reservations"]["cpus"], resources["reservations"]["memory"]) == (0.5, "536870912")
        assert [v["source"] for v in agent["volumes"] if v["type"] == "volume"] == [f"spool-{color}"]
        assert "/health/basic" in " ".join(agent["healthcheck"]["test"])
        assert agent["networks"].keys() == {"ald"}
        assert all(p["host_ip"] == "127.0.0.1" for p in agent["ports"])
    published = {(name, p["target"]) for name, s in services.items() for p in s.get("ports", [])}
    expected = {("haproxy", 8000), ("haproxy", 8443), ("haproxy", 8404), ("prometheus", 9090), ("grafana", 3000),
                ("alertmanager", 9093)}  # fmt: skip
    assert expected <= published
    alertmanager = services["alertmanager"]
    assert any(v["source"].endswith("monitoring/alertmanager.yml") for v in alertmanager["volumes"])
    assert set(services["prometheus"]["depends_on"]) == {"haproxy", "alertmanager", "blackbox"}
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "replace-me"  # from GRAFANA_PASSWORD
    assert all(s["restart"] == "unless-stopped" for s in services.values())
    volumes = {"spool-blue", "spool-green", "prometheus-data", "alertmanager-data", "grafana-data"}
    assert set(model["volumes"]) == volumes


def test_every_design_variable_reaches_the_agent_and_the_example() -> None:
    model = json.loads(compose("config", "--format", "json", env=TAGS).stdout)
    example = {line.lstrip("# ").split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line}
    environment = set(model["services"]["ald-control-blue"]["environment"])
    # an optional variable unset in the file is passed as null (left to the agent's default): still listed
    raw = COMPOSE_FILE.read_text()
    for name in DESIGN_VARIABLES:
        assert name in example, f"{name} missing from {ENV_EXAMPLE.name}"
        assert name in environment or re.search(rf"^\s+{name}:", raw, re.M), f"{name} not passed to the agents"


def test_compose_spec_schema() -> None:
    result = subprocess.run([require_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                             str(COMPOSE_FILE)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
