"""haproxy/haproxy.cfg: valid as shipped (compose names) and on loopback, and live behaviour with real HAProxy
in front of two stand-in agent colors: checks on /health/basic, standby at weight 0 but checked, a weight
switch through the runtime API with zero failed requests, TLS, stats auth, promex, admin rate limit."""

from __future__ import annotations

import base64
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from deploy_support import (
    ROOT,
    free_port,
    get_json,
    haproxy,
    haproxy_env,
    make_cert,
    require_tool,
    standin_agent,
    wait_until,
)

CONFIG = ROOT / "haproxy/haproxy.cfg"


def check_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("haproxy"), "-c", "-f", str(CONFIG)], env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def test_config_is_valid_with_the_compose_service_names(tmp_path: Path) -> None:
    env = haproxy_env(tmp_path, blue_port=1, green_port=2, cert=make_cert(tmp_path))
    del env["HAPROXY_BLUE_ADDR"], env["HAPROXY_GREEN_ADDR"]  # production defaults: ald-control-<color>:8000
    result = check_config(env)
    assert result.returncode == 0, result.stderr
    assert "ald-control-blue" in result.stderr  # unresolvable here, tolerated thanks to init-addr none


def test_config_check_catches_a_missing_certificate(tmp_path: Path) -> None:
    env = haproxy_env(tmp_path, blue_port=1, green_port=2, cert=tmp_path / "absent.pem")
    assert check_config(env).returncode != 0


def test_standby_is_at_weight_zero_and_never_disabled() -> None:
    servers = [line.split() for line in CONFIG.read_text().splitlines() if line.strip().startswith("server ")]
    assert {s[1]: s[s.index("weight") + 1] for s in servers} == {"blue": "100", "green": "0"}
    text = CONFIG.read_text()
    assert " disabled" not in text.replace("# ", "")  # a never-checked server is assumed UP when enabled
    assert "http-check send meth GET uri /health/basic" in text


def _load(url: str, count: int, results: Counter, *, threads: int = 4) -> None:
    """`count` GETs of `url` from `threads` threads; results counts the answering color or the error."""

    def worker(n: int) -> None:
        for _ in range(n):
            try:
                status, body = get_json(url, timeout=5)
                results[body.get("color", f"http {status}") if status == 200 else f"http {status}"] += 1
            except (OSError, urllib.error.URLError) as exc:
                results[f"error {type(exc).__name__}"] += 1

    pool = [threading.Thread(target=worker, args=(count // threads,)) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)


def test_live_weight_switch_fails_no_request(tmp_path: Path) -> None:
    with (
        standin_agent(tmp_path, color="blue", version="1.0.0") as blue,
        standin_agent(tmp_path, color="green", version="1.1.0") as green,
        haproxy(tmp_path, blue_port=blue.port, green_port=green.port) as lb,
    ):
        wait_until(lambda: lb.up("blue") and lb.up("green"), timeout=10, what="both colors UP (L7OK)")
        servers = lb.servers()
        assert (servers["blue"]["weight"], servers["green"]["weight"]) == ("100", "0")

        url = f"http://127.0.0.1:{lb.http_port}/health"
        results: Counter = Counter()
        loader = threading.Thread(target=_load, args=(url, 800, results))
        loader.start()
        wait_until(lambda: sum(results.values()) >= 300, timeout=30, what="300 requests before the switch")
        # the rule deploy.sh follows: one line, the new weight raised first
        assert lb.command("set weight be_agent/green 100; set weight be_agent/blue 0").strip() == ""
        loader.join(60)
        after = Counter()
        _load(url, 100, after, threads=2)

    assert sum(results.values()) == 800
    failed = {k: v for k, v in results.items() if k not in ("blue", "green")}
    assert failed == {}, f"failed requests during the switch: {failed}"
    assert results["blue"] >= 300 and results["green"] > 0
    assert after == Counter(green=100)


def test_dead_standby_is_reported_down_and_traffic_stays(tmp_path: Path) -> None:
    with (
        standin_agent(tmp_path, color="blue", version="1.0.0") as blue,
        standin_agent(tmp_path, color="green", version="1.1.0") as green,
        haproxy(tmp_path, blue_port=blue.port, green_port=green.port) as lb,
    ):
        wait_until(lambda: lb.up("green"), timeout=10, what="green UP")
        green.set_serving(False)  # /health/basic answers 503
        wait_until(lambda: lb.servers()["green"]["status"] == "DOWN", timeout=10, what="green DOWN")
        assert lb.servers()["green"]["check_status"] == "L7STS"
        status, body = get_json(f"http://127.0.0.1:{lb.http_port}/health")
        assert (status, body["color"]) == (200, "blue")


def _open(url: str, *, auth: str | None = None, context: ssl.SSLContext | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_tls_stats_auth_exporter_and_admin_rate_limit(tmp_path: Path) -> None:
    with (
        standin_agent(tmp_path, color="blue", version="1.0.0") as blue,
        haproxy(tmp_path, blue_port=blue.port, green_port=free_port()) as lb,
    ):
        wait_until(lambda: lb.up("blue"), timeout=10, what="blue UP")
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # self-signed, local use only
        assert _open(f"https://127.0.0.1:{lb.https_port}/health/basic", context=insecure) == 200

        stats = f"http://127.0.0.1:{lb.stats_port}"
        assert _open(f"{stats}/stats") == 401
        assert _open(f"{stats}/stats", auth="admin:stats-pass") == 200
        with urllib.request.urlopen(f"{stats}/metrics", timeout=5) as response:
            exported = response.read().decode()
        assert 'haproxy_server_weight{proxy="be_agent",server="blue"} 100' in exported

        # 10 admin requests per 10 s per address pass through (the agent answers them), the next get 429
        codes = [_open(f"http://127.0.0.1:{lb.http_port}/admin/handover") for _ in range(14)]
        assert 429 not in codes[:10] and codes[11:] == [429, 429, 429]
        assert _open(f"http://127.0.0.1:{lb.http_port}/health/basic") == 200  # other paths unaffected


@pytest.mark.parametrize("port_var", ["HAPROXY_HTTP_PORT", "HAPROXY_STATS_PORT"])
def test_config_rejects_a_bad_port(tmp_path: Path, port_var: str) -> None:
    env = haproxy_env(tmp_path, blue_port=1, green_port=2, cert=make_cert(tmp_path))
    env[port_var] = "not-a-port"
    assert check_config(env).returncode != 0
