"""Command line for operators and equipment engineers: `python -m agent <command>`.

One module per command group (plc, recipe, command); this one parses and dispatches. Exit codes: 0 ok,
1 the operation failed (PLC unreachable, write not verified, command failed), 2 bad input or bad
configuration (one `error:` line per problem on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from pydantic import SecretStr

from agent import __version__
from agent.cli import alarms, commands, key, machine, plc, recipe, runs, spool
from agent.cli.output import EXIT_FAILED, EXIT_USAGE, errors
from agent.config import Settings, load_settings
from agent.errors import AgentError, CommandError, ConfigError, RecipeError, ValidationError
from agent.logs import configure_logging

__all__ = ["build_parser", "main"]

EPILOG = """\
all commands:
  run                                      the agent, configured by environment variables
  embedded                                 local stack + simulator + agent (the README's run command)
  simulate [--port 5020]                   the ALD reactor simulator on Modbus TCP
  plc read [KEY ...|--all] [--json]        read parameters from the PLC
  plc write KEY VALUE [--no-verify]        write one parameter (validated, read back)
  plc plan [--json]                        the Modbus request plan for the register map
  plc safe-state                           emergency: valves closed, carrier MFC 0, read back
  recipe validate FILE|--id ID             check a recipe against the register map (every problem)
  recipe plan FILE|--id ID [--steps]       expanded step count and planned time
  command start-recipe ID|stop|pause|resume|set KEY VALUE|ack-alarm ID|all
                                           insert a command like the dashboard and follow it to its end
  alarms list [--all] [--limit N] [--json] the machine's open process alarms (ids to acknowledge)
  runs list [--limit N] | runs show RUN_ID [--steps]
                                           the machine's runs: status, progress, step timings
  machine register --name N --serial S [--map FILE.csv]
                                           onboard a machine and its register map; prints MACHINE_ID
  machine list                             the machines Supabase knows
  spool quarantine list|show ID|replay ID...|discard ID...
                                           records Supabase refused: inspect, replay after a fix, discard
  spool backup FILE | spool restore FILE   the unshipped records, online copy / restore (agent stopped)
  config                                   validate and show the configuration
  key [--check] [--env-file FILE]          SUPABASE_KEY's role, machine and expiry; --check: does Supabase accept it

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("run", help="run the agent with the configuration from the environment")
    embedded = sub.add_parser("embedded", help="run the embedded default: local stack + simulator + agent")
    embedded.add_argument("--status-every", type=float, default=5.0, metavar="S", help="status line period (5 s)")
    plc.add_parsers(sub)
    recipe.add_parsers(sub)
    commands.add_parsers(sub)
    runs.add_parsers(sub)
    alarms.add_parsers(sub)
    machine.add_parsers(sub)
    spool.add_parsers(sub)
    sub.add_parser("config", help="validate and show the effective configuration (secrets hidden)")
    key.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        configure_logging(level=settings.LOG_LEVEL, fmt=settings.LOG_FORMAT, log_dir=settings.LOG_DIR)
        return asyncio.run(_dispatch(args, settings))
    except (ConfigError, ValidationError, RecipeError, CommandError) as exc:
        errors(str(exc))
        return EXIT_USAGE
    except AgentError as exc:
        errors(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `plc read --all | head`
        sys.stderr.close()
        return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.command == "plc" and getattr(args, "host", None):
        overrides["PLC_HOST"] = args.host
    if args.command == "plc" and getattr(args, "port", None) is not None:
        overrides["PLC_PORT"] = args.port
    if args.command == "key" and args.env_file is not None:
        if not args.env_file.is_file():
            raise ConfigError(f"--env-file: no such file: {args.env_file}")
        overrides["_env_file"] = args.env_file  # pydantic-settings: the environment overrides the file
    return load_settings(**overrides)


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    match args.command:
        case "run":
            from agent.app import run_agent

            await run_agent(settings)
        case "embedded":
            from agent.embedded import run_embedded

            return await run_embedded(settings, status_every_s=args.status_every)
        case "simulate":
            return await plc.run_simulate(args)
        case "plc":
            return await plc.run_plc(args, settings)
        case "recipe":
            return await recipe.run(args, settings)
        case "command":
            return await commands.run(args, settings)
        case "runs":
            return await runs.run(args, settings)
        case "alarms":
            return await alarms.run(args, settings)
        case "machine":
            return await machine.run(args, settings)
        case "spool":
            return await spool.run(args, settings)
        case "config":
            print(json.dumps(_describe(settings), indent=2))
        case "key":
            return await key.run(args, settings)
    return 0


def _describe(settings: Settings) -> dict[str, object]:
    shown: dict[str, object] = {}
    for name, value in settings.model_dump().items():
        shown[name] = "********" if isinstance(value, SecretStr) else None if value is None else str(value)
    return shown
