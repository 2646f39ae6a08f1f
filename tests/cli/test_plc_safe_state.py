"""`python -m agent plc safe-state`, the runbook's emergency step when the agent cannot stop a run itself: every
pulse valve closed and the carrier MFC at 0 on a real simulator over Modbus TCP, each write read back."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from agent.plc import load_default_map

ROOT = Path(__file__).resolve().parents[2]


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "LOG_"))}
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=ROOT)  # fmt: skip


@pytest.fixture
def sim_port() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "agent", "simulate", "--port", "0", "--watchdog-timeout", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    yield line.rsplit(":", 1)[1].strip()
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


def _open_valves_as_a_stuck_master_would(port: str, *keys: str) -> None:
    """Pulse valves are never opened by `plc write` (the safety gate refuses it), so the valves a stuck recipe
    left open are set here with a raw Modbus client, the way any other master could."""
    register_map = load_default_map()
    client = ModbusTcpClient("127.0.0.1", port=int(port))
    assert client.connect()
    try:
        for key in keys:
            assert not client.write_coil(register_map[key].write_address or 0, True).isError()
    finally:
        client.close()


def test_safe_state_closes_every_valve_and_stops_the_flow(sim_port: str) -> None:
    _open_valves_as_a_stuck_master_would(sim_port, "valve_1.state", "valve_3.state")
    assert agent("plc", "write", "mfc_1.flow_sp", "50", "--port", sim_port).returncode == 0
    done = agent("plc", "safe-state", "--port", sim_port)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:6] == [f"valve_{n}.pulse_trigger = 0 confirmed" for n in range(1, 7)]  # PLC pulses cancelled
    assert lines[6:12] == [f"valve_{n}.state = false confirmed" for n in range(1, 7)]
    assert lines[12:] == ["mfc_1.flow_sp = 0 confirmed", "safe state confirmed: 13 writes read back"]
    read = agent("plc", "read", "valve_1.state", "valve_3.state", "mfc_1.flow_sp", "--json", "--port", sim_port)
    assert json.loads(read.stdout) == {"valve_1.state": False, "valve_3.state": False, "mfc_1.flow_sp": 0.0}


def test_safe_state_with_the_plc_unreachable_says_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    done = agent("plc", "safe-state", "--port", port)
    assert done.returncode == 1 and "error: PLC unreachable" in done.stderr
