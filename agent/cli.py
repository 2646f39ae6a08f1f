"""Command line for operators and equipment engineers: `python -m agent <command>`.

Exit codes: 0 ok, 1 the operation failed (PLC unreachable, write not verified), 2 bad input or bad
configuration (one `error:` line per problem on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from loguru import logger
from pydantic import SecretStr

from agent import __version__
from agent.app import connection_for, device_for, load_register_map, run_agent
from agent.config import Settings, load_settings
from agent.embedded import run_embedded
from agent.errors import AgentError, ConfigError, PlcError, ValidationError
from agent.logs import configure_logging
from agent.plc import RegisterMap, WordOrder, load_default_map, load_map_csv, parse_value, plan_reads
from agent.plc.sim import Simulator

__all__ = ["build_parser", "main"]

EXIT_FAILED, EXIT_USAGE = 1, 2
EPILOG = """\
all commands:
  run                                  the agent, configured by environment variables
  embedded                             simulator + agent together (the README's run command)
  simulate [--port 5020]               the ALD reactor simulator on Modbus TCP
  plc read [KEY ...|--all] [--json]    read parameters from the PLC
  plc write KEY VALUE [--no-verify]    write one parameter (validated, read back)
  plc plan [--json]                    the Modbus request plan for the register map
  config                               validate and show the configuration

exit codes: 0 ok, 1 operation failed, 2 bad input or configuration
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="ald-agent: the edge agent between an ALD reactor's PLC and Supabase. "
        "Configuration comes from environment variables (see `config`).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ald-agent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("run", help="run the agent with the configuration from the environment")
    embedded = commands.add_parser(
        "embedded", help="run the embedded default: the reactor simulator plus the agent sampling it"
    )
    embedded.add_argument("--status-every", type=float, default=5.0, metavar="S", help="status line period (5 s)")

    sim = commands.add_parser("simulate", help="serve the ALD reactor simulator over Modbus TCP")
    sim.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1)")
    sim.add_argument("--port", type=int, default=5020, help="TCP port, 0 = any free port (5020)")
    sim.add_argument("--map", type=Path, help="register map CSV (default: the reference reactor)")
    sim.add_argument("--word-order", choices=["big", "little"], default="little", help="32-bit word order (little)")
    sim.add_argument("--watchdog-timeout", type=float, default=5.0, metavar="S", help="0 disables (5 s)")
    sim.add_argument("--address-as-value", action="store_true", help="every register holds its own address")
    sim.add_argument("--seed", type=int, default=0, help="noise seed (0)")

    plc = commands.add_parser("plc", help="read, write and plan PLC parameters directly")
    plc_commands = plc.add_subparsers(dest="plc_command", metavar="PLC_COMMAND", required=True)
    read = plc_commands.add_parser("read", help="read parameters by key, or --all")
    read.add_argument("keys", nargs="*", metavar="KEY")
    read.add_argument("--all", action="store_true", help="read every mapped parameter")
    read.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    write = plc_commands.add_parser("write", help="write one parameter (validated, read back)")
    write.add_argument("key", metavar="KEY")
    write.add_argument("value", metavar="VALUE")
    write.add_argument("--no-verify", action="store_true", help="skip the read-back check")
    plan = plc_commands.add_parser("plan", help="show the Modbus request plan for the map")
    plan.add_argument("--json", action="store_true")
    for sub in (read, write, plan):
        sub.add_argument("--host", help="PLC host (PLC_HOST)")
        sub.add_argument("--port", type=int, help="PLC port (PLC_PORT)")

    commands.add_parser("config", help="validate and show the effective configuration (secrets hidden)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        configure_logging(level=settings.LOG_LEVEL, fmt=settings.LOG_FORMAT, log_dir=settings.LOG_DIR)
        return _dispatch(args, settings)
    except ConfigError as exc:
        _errors(str(exc))
        return EXIT_USAGE
    except ValidationError as exc:
        _errors(str(exc))
        return EXIT_USAGE
    except AgentError as exc:
        _errors(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `plc read --all | head`
        sys.stderr.close()
        return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "host", None) and args.command == "plc":
        overrides["PLC_HOST"] = args.host
    if getattr(args, "port", None) is not None and args.command == "plc":
        overrides["PLC_PORT"] = args.port
    return load_settings(**overrides)


def _errors(text: str) -> None:
    for line in text.splitlines() or ["unknown error"]:
        print(f"error: {line}", file=sys.stderr)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    match args.command:
        case "run":
            asyncio.run(run_agent(settings))
        case "embedded":
            return asyncio.run(run_embedded(settings, status_every_s=args.status_every))
        case "simulate":
            asyncio.run(_simulate(args))
        case "config":
            print(json.dumps(_describe(settings), indent=2))
        case "plc":
            return asyncio.run(_plc(args, settings))
    return 0


def _describe(settings: Settings) -> dict[str, object]:
    shown: dict[str, object] = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            shown[name] = "********"
        else:
            shown[name] = None if value is None else str(value)
    return shown


# --- plc ------------------------------------------------------------------------------------------


async def _plc(args: argparse.Namespace, settings: Settings) -> int:
    register_map = load_register_map(settings)
    if args.plc_command == "plan":
        _print_plan(register_map, settings, as_json=args.json)
        return 0
    if args.plc_command == "read" and not (args.keys or args.all):
        raise ValidationError("name at least one KEY, or --all")
    if args.plc_command == "read":
        for key in args.keys:
            register_map[key]  # unknown keys fail before any I/O
    async with connection_for(settings) as connection:
        if not await connection.wait_connected(settings.PLC_TIMEOUT_S * 3):
            raise PlcError(f"PLC unreachable: {connection.last_error}", where=connection.where)
        device = device_for(settings, connection, register_map)
        if args.plc_command == "write":
            param = register_map[args.key]
            value = parse_value(param, args.value)
            actual = await device.write(args.key, value, verify=not args.no_verify)
            print(f"{args.key} = {_show(actual)} {param.unit}".rstrip())
            return 0
        frame = await (device.read_all() if args.all else device.read(args.keys))
    if args.json:
        print(json.dumps({k: _jsonable(v) for k, v in frame.values.items()}))
    else:
        width = max(len(k) for k in frame.values)
        for key, value in frame.values.items():
            unit = register_map[key].unit
            print(f"{key:<{width}}  {_show(value):>14}  {unit}".rstrip())
    if frame.failed_keys:
        _errors(f"could not read: {', '.join(frame.failed_keys)}")
        return EXIT_FAILED
    return 0


def _print_plan(register_map: RegisterMap, settings: Settings, *, as_json: bool) -> None:
    blocks = plan_reads(register_map, max_gap=settings.PLC_MAX_GAP, max_registers=settings.PLC_BULK_READ_SIZE)
    if as_json:
        print(
            json.dumps(
                [
                    {"kind": b.kind.value, "start": b.start, "count": b.count, "keys": [p.key for p in b.parameters]}
                    for b in blocks
                ],
                indent=2,
            )
        )
        return
    for b in blocks:
        print(f"{b.kind.value:<15} {b.start:>5} +{b.count:<4} {len(b.parameters):>3} parameters")
    print(
        f"{len(blocks)} requests for {len(register_map)} parameters (max gap {settings.PLC_MAX_GAP}, "
        f"max {settings.PLC_BULK_READ_SIZE} registers per request)"
    )


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _jsonable(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


# --- simulator and embedded default -----------------------------------------------------------------


async def _simulate(args: argparse.Namespace) -> None:
    register_map = load_map_csv(args.map) if args.map else load_default_map()
    simulator = Simulator(
        register_map,
        host=args.host,
        port=args.port,
        word_order=WordOrder(args.word_order),
        watchdog_timeout_s=args.watchdog_timeout or float("inf"),
        address_as_value=args.address_as_value,
        seed=args.seed,
    )
    stop = _stop_event()
    async with simulator:
        # The first stdout line is machine-readable: parents (embedded, tests) parse the port from it.
        print(f"listening on {simulator.host}:{simulator.port}", flush=True)
        logger.info(
            "ALD reactor simulator: {} parameters on modbus://{}:{}", len(register_map), simulator.host, simulator.port
        )
        await stop.wait()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
