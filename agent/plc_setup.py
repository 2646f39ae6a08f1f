"""PLC objects built from `Settings`: shared by the running agent and the engineers' CLI, so both talk to the
PLC exactly the same way (map, unit, timeout, word order, read planning).

`PLC_TYPE=simulation` gives the agent its own PLC: the built-in reactor simulator (agent/plc/sim), served over
Modbus TCP on 127.0.0.1 on a free port for as long as the agent runs, and the agent connects to it exactly as
to a real PLC (PLC_HOST and PLC_PORT are then unused). `real` (the default) connects to PLC_HOST:PLC_PORT.
"""

from __future__ import annotations

import contextlib
from typing import Any

from loguru import logger

from agent.config import PlcType, Settings
from agent.plc import PlcConnection, PlcDevice, RegisterMap, load_default_map, load_map_csv

__all__ = ["connection_for", "device_for", "load_register_map", "simulated_plc"]


def load_register_map(settings: Settings) -> RegisterMap:
    """The file map: PLC_MAP_FILE when set, else the packaged reference map (the CLI's and the fallback)."""
    return load_map_csv(settings.PLC_MAP_FILE) if settings.PLC_MAP_FILE else load_default_map()


def connection_for(settings: Settings, **kw: Any) -> PlcConnection:
    return PlcConnection(
        host=settings.PLC_HOST,
        port=settings.PLC_PORT,
        unit_id=settings.PLC_UNIT_ID,
        timeout_s=settings.PLC_TIMEOUT_S,
        connections=settings.PLC_CONNECTIONS,
        **kw,
    )


def device_for(settings: Settings, connection: PlcConnection, register_map: RegisterMap) -> PlcDevice:
    return PlcDevice(
        connection,
        register_map,
        word_order=settings.PLC_WORD_ORDER,
        max_gap=settings.PLC_MAX_GAP,
        max_registers=settings.PLC_BULK_READ_SIZE,
    )


async def simulated_plc(settings: Settings, stack: contextlib.AsyncExitStack, *, register_map: RegisterMap) -> Settings:
    """With PLC_TYPE=simulation: start the built-in simulator of `register_map` (closed with `stack`) and return
    settings pointing at it; with `real`, `settings` unchanged."""
    if settings.PLC_TYPE is not PlcType.SIMULATION:
        return settings
    # Imported here: the simulator brings pymodbus' server and simulator packages, which an agent on a real PLC
    # never needs in memory.
    from agent.plc.sim import Simulator

    simulator = Simulator(
        register_map,
        host="127.0.0.1",
        port=0,
        word_order=settings.PLC_WORD_ORDER,
        watchdog_timeout_s=settings.WATCHDOG_TIMEOUT,
    )
    await stack.enter_async_context(simulator)
    logger.warning(
        "PLC_TYPE=simulation: this agent runs against its own simulated reactor on modbus://127.0.0.1:{} "
        "(PLC_HOST/PLC_PORT unused)", simulator.port
    )  # fmt: skip
    return settings.model_copy(update={"PLC_HOST": "127.0.0.1", "PLC_PORT": simulator.port})
