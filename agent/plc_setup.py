"""PLC objects built from `Settings`: shared by the running agent and the engineers' CLI, so both talk to the
PLC exactly the same way (map, unit, timeout, word order, read planning)."""

from __future__ import annotations

from typing import Any

from agent.config import Settings
from agent.plc import PlcConnection, PlcDevice, RegisterMap, load_default_map, load_map_csv

__all__ = ["connection_for", "device_for", "load_register_map"]


def load_register_map(settings: Settings) -> RegisterMap:
    """The file map: PLC_MAP_FILE when set, else the packaged reference map (the CLI's and the fallback)."""
    return load_map_csv(settings.PLC_MAP_FILE) if settings.PLC_MAP_FILE else load_default_map()


def connection_for(settings: Settings, **kw: Any) -> PlcConnection:
    return PlcConnection(
        host=settings.PLC_HOST,
        port=settings.PLC_PORT,
        unit_id=settings.PLC_UNIT_ID,
        timeout_s=settings.PLC_TIMEOUT_S,
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
