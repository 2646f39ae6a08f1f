"""Machine onboarding: a machine and its register map in Supabase, and the start-up check that it exists.

Without a `machines` row every record the agent ships fails its foreign key and is quarantined, while the agent
looks "up"; so `python -m agent machine register` creates the row and its `parameters` (the map CSV, the same
format as `agent/plc/default_map.csv`), and an agent whose MACHINE_ID Supabase does not know refuses to start.

Registration is idempotent: the machine is found by its serial number (unique), so a rerun updates its name
instead of adding a second machine; parameters are upserted by (machine_id, key), so a rerun with an edited map
updates rows in place and keeps their ids (parameter_history points at them). Keys in the database that the map
no longer has are reported, never deleted: deleting a parameter deletes its history.

It needs the project's service-role key (a machine key may not create machines).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.cloud import CloudClient
from agent.errors import CloudError, CloudPermanentError, ConfigError
from agent.plc import Parameter, RegisterMap

__all__ = [
    "MACHINE_KEY_ROLE",
    "Registration",
    "machine_key",
    "parameter_rows",
    "register_machine",
    "require_machine",
]

#: The agent's machine-scoped database role (supabase/migrations/*_machine_agent_role.sql).
MACHINE_KEY_ROLE = "ald_agent"
MACHINE_KEY_ISSUER = "supabase"
MACHINE_KEY_LIFETIME_S = 365 * 24 * 3600
REGISTER_HINT = "register it with `python -m agent machine register --name NAME --serial SERIAL --map FILE.csv`"


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """What `register_machine` did: the id to use as MACHINE_ID, and what changed."""

    machine_id: str
    created: bool  # False: the serial number was known, the machine updated in place
    added: tuple[str, ...]  # parameter keys new to the database
    updated: tuple[str, ...]  # parameter keys that existed and were rewritten from the map
    unmapped: tuple[str, ...]  # keys in the database that the map does not have (left in place)


def parameter_row(parameter: Parameter, *, machine_id: str) -> dict[str, Any]:
    """One `parameters` row (DESIGN §4 columns) for `parameter`; no id, so an upsert keeps the existing one."""
    p = parameter
    return {
        "machine_id": machine_id,
        "key": p.key,
        "component": p.component,
        "name": p.name,
        "unit": p.unit or None,
        "data_type": p.data_type.value,
        "register": p.register.value,
        "address": p.address,
        "write_address": p.write_address,
        "scale": p.scale,
        "offset": p.offset,
        "min_value": p.min_value,
        "max_value": p.max_value,
        "writable": p.writable,
        "logged": p.logged,
        "deadband": p.deadband,
    }


def parameter_rows(register_map: RegisterMap, *, machine_id: str) -> list[dict[str, Any]]:
    """The map as `parameters` rows for `machine_id`, in key order."""
    return [parameter_row(p, machine_id=machine_id) for p in sorted(register_map, key=lambda p: p.key)]


async def register_machine(cloud: CloudClient, *, name: str, serial: str, register_map: RegisterMap) -> Registration:
    """Create or update the machine with serial number `serial` and upsert its map; see the module docstring.

    Raises `CloudError` when Supabase refuses or cannot be reached (nothing is half-registered in a way a
    rerun would not repair: the machine row comes first, then one bulk upsert of the map).
    """
    await cloud.upsert("machines", [{"name": name, "serial_number": serial}], on_conflict="serial_number")
    found = await cloud.select("machines", columns="id,created_at,updated_at", eq={"serial_number": serial})
    if not found:
        raise CloudPermanentError(f"machine {serial!r} was upserted but cannot be read back (a service-role key?)")
    machine_id = str(found[0]["id"])
    created = found[0]["created_at"] == found[0]["updated_at"]
    before = {str(row["key"]) for row in await cloud.select("parameters", columns="key", eq={"machine_id": machine_id})}
    rows = parameter_rows(register_map, machine_id=machine_id)
    await cloud.upsert("parameters", rows, on_conflict="machine_id,key")
    keys = [str(row["key"]) for row in rows]
    return Registration(
        machine_id=machine_id,
        created=created,
        added=tuple(k for k in keys if k not in before),
        updated=tuple(k for k in keys if k in before),
        unmapped=tuple(sorted(before - set(keys))),
    )


async def require_machine(cloud: CloudClient, machine_id: str) -> str | None:
    """Refuse to run for a machine Supabase does not have: `ConfigError` with one line naming it.

    Returns the machine's name when Supabase confirmed the machine (the console shows it: an operator knows
    the tool by name, not by UUID), None when it could not be asked (unreachable: the agent starts anyway and
    spools, as it would for any outage; the machine existed when it was deployed).
    """
    try:
        rows: Sequence[dict[str, Any]] = await cloud.select("machines", columns="id,name", eq={"id": machine_id})
    except CloudPermanentError as exc:
        raise ConfigError(f"MACHINE_ID: cannot check machine {machine_id} in Supabase: {exc}") from exc
    except CloudError:
        return None
    if not rows:
        raise ConfigError(f"MACHINE_ID: machine {machine_id} does not exist in Supabase; {REGISTER_HINT}")
    return str(rows[0].get("name") or machine_id)


def machine_key(machine_id: str, *, secret: str, lifetime_s: int = MACHINE_KEY_LIFETIME_S) -> str:
    """A SUPABASE_KEY that acts for `machine_id` only (role ald_agent, claim machine_id), signed HS256 with the
    project's JWT secret; the agent, PostgREST and Realtime read the same claims."""
    now = int(time.time())
    claims = {
        "iss": MACHINE_KEY_ISSUER,
        "role": MACHINE_KEY_ROLE,
        "machine_id": machine_id,
        "iat": now,
        "exp": now + lifetime_s,
    }
    import jwt  # here, not at the top: PyJWT loads `cryptography` (~9 MB resident), which a running agent never needs

    return jwt.encode(claims, secret, algorithm="HS256")
