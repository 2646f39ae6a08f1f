"""PLC_TYPE is honoured: `simulation` gives the agent its own built-in simulated reactor (served over Modbus TCP
for as long as the agent runs; PLC_HOST/PLC_PORT unused), `real` (the default) connects to PLC_HOST:PLC_PORT."""

from __future__ import annotations

import socket

from agent.config import PlcType, load_settings
from tests.e2e.conftest import StartAgent, stop
from tests.support.poll import eventually


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_default_is_a_real_plc() -> None:
    assert load_settings().PLC_TYPE is PlcType.REAL


async def test_simulation_starts_the_agents_own_simulator(start_agent: StartAgent) -> None:
    port = closed_port()  # where PLC_HOST:PLC_PORT point, nothing listens
    agent = await start_agent(PLC_TYPE="simulation", PLC_PORT=port)
    await eventually(lambda: agent.parts is not None and agent.parts.sampler.stats.ticks >= 3, within=15)
    snapshot = agent.snapshot()
    assert snapshot.plc_connected and snapshot.failed_frames == 0
    assert agent.parts is not None and agent.parts.connection.port != port  # its own simulator's port
    own = agent.parts.connection.port
    await stop(agent)
    with socket.socket() as probe:  # the simulator went with the agent
        assert probe.connect_ex(("127.0.0.1", own)) != 0


async def test_real_connects_where_it_is_told(start_agent: StartAgent) -> None:
    agent = await start_agent(PLC_TYPE="real", PLC_PORT=closed_port())
    await eventually(lambda: agent.parts is not None and agent.parts.sampler.stats.ticks >= 2, within=15)
    assert not agent.snapshot().plc_connected
