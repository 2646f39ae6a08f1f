"""`key [--check]`: what SUPABASE_KEY says about itself (role, machine, expiry) and, with --check, whether Supabase
accepts it for this machine: the steps of a key rotation (docs/RUNBOOK.md "Rotate the agent's key")."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from agent.cli.output import EXIT_FAILED
from agent.cloud import cloud_for, read_claims
from agent.config import Settings
from agent.errors import CloudError, ConfigError

__all__ = ["add_parsers", "run"]

DAY_S = 86400


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = sub.add_parser("key", help="show SUPABASE_KEY's role, machine and expiry (--check: ask Supabase)")
    key.add_argument(
        "--check", action="store_true", help="ask Supabase whether it accepts the key for MACHINE_ID (exit 1 if not)"
    )
    key.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="read the settings from an agent environment file (KEY=VALUE lines); the environment still wins",
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print one JSON object (never the key itself); exit 1 when --check finds the key refused or unusable."""
    if settings.SUPABASE_KEY is None:
        raise ConfigError("SUPABASE_KEY: not set")
    claims = read_claims(settings.SUPABASE_KEY.get_secret_value())
    left = claims.expires_in_s(datetime.now(UTC))
    shown: dict[str, object] = {
        "kind": claims.kind,
        "role": claims.role,
        "machine_id": claims.machine_id,
        "issued_at": claims.issued_at.isoformat() if claims.issued_at else None,
        "expires_at": claims.expires_at.isoformat() if claims.expires_at else None,
        "expires_in_days": None if left is None else round(left / DAY_S, 1),
        "expired": None if left is None else left <= 0,
    }
    code = 0
    if args.check:
        problem = await _problem(settings)
        shown |= {"accepted": problem is None, "problem": problem}
        code = 0 if problem is None else EXIT_FAILED
    print(json.dumps(shown, indent=2))
    return code


async def _problem(settings: Settings) -> str | None:
    """None if Supabase accepts the key and it can see MACHINE_ID's row, else what is wrong."""
    async with cloud_for(settings) as cloud:
        try:
            rows = await cloud.select("machines", columns="id", eq={"id": str(settings.MACHINE_ID)})
        except CloudError as exc:
            return str(exc)
    return None if rows else f"the key is accepted but cannot see machine {settings.MACHINE_ID}"
