"""`machine register|list`: put a machine and its register map into Supabase (onboarding), see the machines.

Needs SUPABASE_URL and the project's service-role SUPABASE_KEY (a machine key may not create machines); not
MACHINE_ID, which is what `register` prints. With SUPABASE_JWT_SECRET set (the project's JWT secret), it also
prints a machine-scoped key for that agent's SUPABASE_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from agent.cloud import CloudClient
from agent.config import Settings
from agent.errors import ConfigError
from agent.onboarding import Registration, machine_key, register_machine
from agent.plc import load_default_map, load_map_csv

__all__ = ["add_parsers", "run"]

JWT_SECRET_ENV = "SUPABASE_JWT_SECRET"


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    machine = sub.add_parser("machine", help="register a machine and its register map in Supabase; list machines")
    actions = machine.add_subparsers(dest="machine_action", metavar="ACTION", required=True)
    register = actions.add_parser(
        "register",
        help="create or update a machine (by serial number) and upsert its register map; prints MACHINE_ID",
        description=f"Idempotent: a rerun updates the machine and its parameters in place. With {JWT_SECRET_ENV} "
        "set, also prints a machine-scoped SUPABASE_KEY.",
    )
    register.add_argument("--name", required=True, help="the machine's name on the dashboard")
    register.add_argument("--serial", required=True, help="its serial number: the identity a rerun finds")
    register.add_argument(
        "--map", type=Path, default=None, metavar="FILE.csv", help="register map CSV (default: the packaged map)"
    )
    register.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    listing = actions.add_parser("list", help="every machine: id, serial number, name, status")
    listing.add_argument("--json", action="store_true", help="JSON rows")


def _project_cloud(settings: Settings) -> CloudClient:
    problems = [f"{name}: required" for name in ("SUPABASE_URL", "SUPABASE_KEY") if getattr(settings, name) is None]
    if not problems and settings.key_machine_scope() is not None:
        problems.append("SUPABASE_KEY: a machine key cannot register machines; use the project's service-role key")
    if problems:
        raise ConfigError("\n".join(problems))
    assert settings.SUPABASE_URL is not None and settings.SUPABASE_KEY is not None
    api_key = settings.SUPABASE_API_KEY.get_secret_value() if settings.SUPABASE_API_KEY else None
    return CloudClient(settings.SUPABASE_URL, settings.SUPABASE_KEY.get_secret_value(), api_key=api_key)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    cloud = _project_cloud(settings)
    if args.machine_action == "list":
        async with cloud:
            rows = await cloud.select("machines", columns="id,serial_number,name,status", order="serial_number")
        if args.json:
            print(json.dumps(rows, indent=2))
        for row in [] if args.json else rows:
            print(f"{row['id']}  {row['serial_number'] or '-':<16} {row['status']:<11} {row['name']}")
        return 0
    register_map = load_map_csv(args.map) if args.map else load_default_map()  # MapError: exit 2, key named
    async with cloud:
        result = await register_machine(cloud, name=args.name, serial=args.serial, register_map=register_map)
    secret = os.environ.get(JWT_SECRET_ENV)
    key = machine_key(result.machine_id, secret=secret) if secret else None
    if args.json:
        print(json.dumps(_as_json(result, key=key), indent=2))
    else:
        _print_lines(result, key=key, serial=args.serial)
    return 0


def _as_json(result: Registration, *, key: str | None) -> dict[str, object]:
    return {
        "machine_id": result.machine_id,
        "created": result.created,
        "added": list(result.added),
        "updated": list(result.updated),
        "unmapped": list(result.unmapped),
        "machine_key": key,
    }


def _print_lines(result: Registration, *, key: str | None, serial: str) -> None:
    verb = "registered" if result.created else "already registered, updated"
    print(f"==> machine {serial}: {verb}")
    print(f"==> parameters: {len(result.added)} added, {len(result.updated)} updated")
    if result.unmapped:
        print(f"==> left in place (not in the map; delete by hand if retired): {', '.join(result.unmapped)}")
    print(f"MACHINE_ID={result.machine_id}")
    if key is not None:
        print(f"SUPABASE_KEY={key}")
    else:
        print(f"(set {JWT_SECRET_ENV} to the project's JWT secret to also get this machine's SUPABASE_KEY)")
