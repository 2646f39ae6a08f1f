"""`plc read|write|plan|safe-state` and `simulate`: direct PLC access for equipment engineers."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
from pathlib import Path

from loguru import logger

from agent.cli.output import EXIT_FAILED, errors, jsonable, show
from agent.config import Settings
from agent.errors import PlcError, ValidationError
from agent.plc import (
    PlcDevice,
    RegisterMap,
    WordOrder,
    load_default_map,
    load_map_csv,
    parse_value,
    plan_reads,
)
from agent.plc_setup import connection_for, device_for, load_register_map
from agent.recipes import safe_state_writes
from agent.safety import WriteGate, WritePurpose, check_write
from agent.tasks import cancel_and_wait

__all__ = ["SIM_SWITCH_INTERVAL_S", "add_parsers", "run_plc", "run_simulate"]

#: The simulator process's interpreter switch interval (the default is 5 ms).
SIM_SWITCH_INTERVAL_S = 0.0002


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = commands.add_parser("simulate", help="serve the ALD reactor simulator over Modbus TCP")
    sim.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1)")
    sim.add_argument("--port", type=int, default=5020, help="TCP port, 0 = any free port (5020)")
    sim.add_argument("--map", type=Path, help="register map CSV (default: the reference reactor)")
    sim.add_argument("--word-order", choices=["big", "little"], default="little", help="32-bit word order (little)")
    sim.add_argument("--watchdog-timeout", type=float, default=5.0, metavar="S", help="0 disables (5 s)")
    sim.add_argument("--address-as-value", action="store_true", help="every register holds its own address")
    sim.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    sim.add_argument(
        "--force", action="append", default=[], metavar="KEY=VALUE", help="pin a value from the start (repeatable)"
    )
    sim.add_argument(
        "--force-file", type=Path, metavar="FILE", help='pin values on demand: a JSON {"key": value} re-read on change'
    )

    plc = commands.add_parser("plc", help="read, write and plan PLC parameters directly")
    plc_commands = plc.add_subparsers(dest="plc_command", metavar="PLC_COMMAND", required=True)
    read = plc_commands.add_parser("read", help="read parameters by key, or --all")
    read.add_argument("keys", nargs="*", metavar="KEY")
    read.add_argument("--all", action="store_true", help="read every mapped parameter")
    read.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    write = plc_commands.add_parser(
        "write",
        help="write one parameter through the safety gate (machine rules; interlocks are the agent's), read back",
    )
    write.add_argument("key", metavar="KEY")
    write.add_argument("value", metavar="VALUE")
    write.add_argument("--no-verify", action="store_true", help="skip the read-back check")
    plan = plc_commands.add_parser("plan", help="show the Modbus request plan for the map")
    plan.add_argument("--json", action="store_true")
    safe = plc_commands.add_parser(
        "safe-state",
        help="emergency: cancel PLC-timed pulses, close every pulse valve and set the carrier MFC to 0 now, read "
        "back (heaters kept)",
        description="Writes the machine's safe state directly to the PLC, as a recipe's end does: for when the "
        "agent is down or not answering. With a healthy agent prefer `command stop` (the run is recorded).",
    )
    for sub in (read, write, plan, safe):
        sub.add_argument("--host", help="PLC host (PLC_HOST)")
        sub.add_argument("--port", type=int, help="PLC port (PLC_PORT)")


async def run_plc(args: argparse.Namespace, settings: Settings) -> int:
    register_map = load_register_map(settings)
    if args.plc_command == "plan":
        _print_plan(register_map, settings, as_json=args.json)
        return 0
    if args.plc_command == "read" and not (args.keys or args.all):
        raise ValidationError("name at least one KEY, or --all")
    if args.plc_command == "read":
        for key in args.keys:
            register_map[key]  # unknown keys fail before any I/O
    if args.plc_command == "write":  # the machine's rules refuse before any I/O, PLC up or not
        value = parse_value(register_map[args.key], args.value)
        check_write(register_map[args.key], value, purpose=WritePurpose.OPERATOR, order=settings.PLC_WORD_ORDER)
    async with connection_for(settings) as connection:
        if not await connection.wait_connected(settings.PLC_TIMEOUT_S * 3):
            raise PlcError(f"PLC unreachable: {connection.last_error}", where=connection.where)
        device = device_for(settings, connection, register_map)
        if args.plc_command == "safe-state":
            return await _safe_state(device)
        if args.plc_command == "write":
            # the same gate as the agent's set_parameter (interlocks are the running agent's: not loaded here)
            gate = WriteGate(device)
            param = register_map[args.key]
            actual = await gate.write(args.key, value, purpose=WritePurpose.OPERATOR, verify=not args.no_verify)
            print(f"{args.key} = {show(actual)} {param.unit}".rstrip())
            return 0
        frame = await (device.read_all() if args.all else device.read(args.keys))
    if args.json:
        print(json.dumps({k: jsonable(v) for k, v in frame.values.items()}))
    else:
        width = max(len(k) for k in frame.values)
        for key, reading in frame.values.items():
            unit = register_map[key].unit
            print(f"{key:<{width}}  {show(reading):>14}  {unit}".rstrip())
    if frame.failed_keys:
        errors(f"could not read: {', '.join(frame.failed_keys)}")
        return EXIT_FAILED
    return 0


async def _safe_state(device: PlcDevice) -> int:
    wanted = dict(safe_state_writes(device.map))
    result = await WriteGate(device).apply_safe_state()  # the same gate as the agent's safe state
    for key in result.done:
        print(f"{key} = {show(wanted[key])} confirmed")
    for key, error in result.errors:
        errors(f"{key}: {error}")
    if result.ok:
        print(f"safe state confirmed: {len(result.done)} writes read back")
        return 0
    errors(f"safe state NOT confirmed: {len(result.errors)} of {len(result.errors) + len(result.done)} writes failed")
    return EXIT_FAILED


def _print_plan(register_map: RegisterMap, settings: Settings, *, as_json: bool) -> None:
    blocks = plan_reads(register_map, max_gap=settings.PLC_MAX_GAP, max_registers=settings.PLC_BULK_READ_SIZE)
    if as_json:
        rows = [
            {"kind": b.kind.value, "start": b.start, "count": b.count, "keys": [p.key for p in b.parameters]}
            for b in blocks
        ]
        print(json.dumps(rows, indent=2))
        return
    for b in blocks:
        print(f"{b.kind.value:<15} {b.start:>5} +{b.count:<4} {len(b.parameters):>3} parameters")
    print(
        f"{len(blocks)} requests for {len(register_map)} parameters (max gap {settings.PLC_MAX_GAP}, "
        f"max {settings.PLC_BULK_READ_SIZE} registers per request)"
    )


async def run_simulate(args: argparse.Namespace) -> int:
    # Imported here, not at the top: every CLI command loads this module, and the simulator brings pymodbus'
    # server and simulator packages, which `python -m agent run` on a real PLC never needs in memory.
    from agent.plc.sim import Simulator, follow_force_file, parse_force

    # This process stands in for a PLC: its pulse task's thread must get the interpreter within a fraction of a
    # millisecond of a pulse's deadline, not after the default 5 ms switch interval (agent/plc/sim/pulses.py).
    sys.setswitchinterval(SIM_SWITCH_INTERVAL_S)
    register_map = load_map_csv(args.map) if args.map else load_default_map()
    try:
        forced = [parse_force(text) for text in args.force]
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if unknown := sorted(key for key, _ in forced if key not in register_map):
        raise ValidationError(f"--force: not in the register map: {', '.join(unknown)}")
    simulator = Simulator(
        register_map,
        host=args.host,
        port=args.port,
        word_order=WordOrder(args.word_order),
        watchdog_timeout_s=args.watchdog_timeout or float("inf"),
        address_as_value=args.address_as_value,
        seed=args.seed,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with simulator:
        for key, value in forced:
            simulator.force(key, value)
        # Everything allocated so far lives as long as the process: out of the collector's way, so a full
        # collection (milliseconds, holding the interpreter) does not delay a pulse's close.
        gc.freeze()
        # The first stdout line is machine-readable: parents (embedded, tests) parse the port from it.
        print(f"listening on {simulator.host}:{simulator.port}", flush=True)
        logger.info(
            "ALD reactor simulator: {} parameters on modbus://{}:{}", len(register_map), simulator.host, simulator.port
        )
        if args.force_file is None:
            await stop.wait()
            return 0
        following = asyncio.create_task(follow_force_file(simulator, args.force_file), name="force-file")
        try:
            await stop.wait()
        finally:
            await cancel_and_wait([following])
    return 0
