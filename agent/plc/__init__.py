"""Everything Modbus: register map, codecs, read planner, connection hub, device access, simulator.

This package is the only place that knows Modbus; the rest of the agent reads and writes parameters by key
through `PlcDevice`.
"""

from agent.plc.codec import Value, decode_value, encode_value
from agent.plc.connection import ConnectionState, PlcConnection
from agent.plc.device import FrameRead, PlcDevice
from agent.plc.planner import ReadBlock, plan_reads
from agent.plc.protocol import WordOrder
from agent.plc.pulses import (
    PulseRegisters,
    PulseStatus,
    is_pulse_trigger,
    next_trigger,
    pulse_registers,
    trigger_valve,
    valve_of_trigger,
)
from agent.plc.registers import (
    DataType,
    Parameter,
    RegisterKind,
    RegisterMap,
    load_default_map,
    load_map_csv,
    map_from_rows,
    parse_map_csv,
)
from agent.plc.writes import parse_value, validate_write

__all__ = [
    "ConnectionState",
    "DataType",
    "FrameRead",
    "Parameter",
    "PlcConnection",
    "PlcDevice",
    "PulseRegisters",
    "PulseStatus",
    "ReadBlock",
    "RegisterKind",
    "RegisterMap",
    "Value",
    "WordOrder",
    "decode_value",
    "encode_value",
    "is_pulse_trigger",
    "load_default_map",
    "load_map_csv",
    "map_from_rows",
    "next_trigger",
    "parse_map_csv",
    "parse_value",
    "plan_reads",
    "pulse_registers",
    "trigger_valve",
    "validate_write",
    "valve_of_trigger",
]
