"""Recipes for end-to-end tests, inserted the way the dashboard stores them (recipes + recipe_steps rows)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

Step = tuple[str, str, dict[str, Any], list["Step"]]  # (type, name, config, children)


def valve(n: int, ms: float, name: str = "") -> Step:
    return ("valve", name or f"valve {n} pulse", {"valve": n, "duration_ms": ms}, [])


def purge(ms: float, flow: float | None = None) -> Step:
    config: dict[str, Any] = {"duration_ms": ms, "gas": "N2"}
    if flow is not None:
        config["flow_sccm"] = flow
    return ("purge", "N2 purge", config, [])


def wait(ms: float) -> Step:
    return ("wait", "wait", {"duration_ms": ms}, [])


def setpoint(key: str, value: float | bool, **wait_for: float) -> Step:
    config: dict[str, Any] = {"parameter": key, "value": value}
    if wait_for:
        config["wait"] = wait_for
    return ("parameter", f"set {key}", config, [])


def loop(count: int, *children: Step, name: str = "loop") -> Step:
    return ("loop", name, {"count": count}, list(children))


def al2o3_fast() -> list[Step]:
    """The seeded Al2O3 TMA/H2O recipe's structure (3 + 100 × 4 + 2 = 405 steps), with short purges so an
    end-to-end run takes seconds instead of twelve minutes."""
    return [
        setpoint("chamber_heater.temperature_sp", 150),
        setpoint("mfc_1.flow_sp", 20, tolerance=2, timeout_ms=10_000),
        purge(50, 20),
        loop(100, valve(1, 20, "TMA pulse"), purge(20, 20), valve(2, 30, "H2O pulse"), purge(20, 20), name="ALD cycle"),
        purge(50, 20),
        wait(10),
    ]


async def insert_recipe(db: asyncpg.Connection, name: str, steps: list[Step]) -> str:
    recipe_id = str(uuid.uuid4())
    await db.execute("insert into recipes (id, name, version) values ($1, $2, 1)", recipe_id, name)

    async def add(items: list[Step], parent: str | None) -> None:
        for sequence, (kind, step_name, config, children) in enumerate(items):
            step_id = str(uuid.uuid4())
            await db.execute(
                "insert into recipe_steps (id, recipe_id, parent_step_id, sequence, type, name, config) "
                "values ($1, $2, $3, $4, $5, $6, $7::jsonb)",
                step_id,
                recipe_id,
                parent,
                sequence,
                kind,
                step_name,
                json.dumps(config),
            )
            await add(children, step_id)

    await add(steps, None)
    return recipe_id


async def insert_command(
    db: asyncpg.Connection, machine_id: str, kind: str, payload: dict[str, Any], **extra: Any
) -> int:
    columns = ["machine_id", "type", "payload", *extra]
    values = [machine_id, kind, json.dumps(payload), *extra.values()]
    marks = ", ".join(f"${i + 1}" + ("::jsonb" if c == "payload" else "") for i, c in enumerate(columns))
    return await db.fetchval(
        f"insert into machine_commands ({', '.join(columns)}) values ({marks}) returning id", *values
    )


async def insert_wide_recipe(
    db: asyncpg.Connection, name: str, *, rows: int, loop: int | None = None, ms: float = 1000, step_name: str = "wait"
) -> str:
    """A recipe of `rows` stored steps in one round trip: `ms` waits named "<step_name> <n>", all at the top
    level, or — with `loop` — a loop of `loop` iterations over `rows − 1` of them."""
    recipe_id = str(uuid.uuid4())
    await db.execute("insert into recipes (id, name, version) values ($1, $2, 1)", recipe_id, name)
    parent: str | None = None
    values: list[tuple[str, str, str | None, int, str, str, str]] = []
    if loop is not None:
        parent = str(uuid.uuid4())
        values.append((parent, recipe_id, None, 0, "loop", "cycle", json.dumps({"count": loop})))
    values += [
        (str(uuid.uuid4()), recipe_id, parent, n, "wait", f"{step_name} {n}", json.dumps({"duration_ms": ms}))
        for n in range(rows - len(values))
    ]
    await db.executemany(
        "insert into recipe_steps (id, recipe_id, parent_step_id, sequence, type, name, config) "
        "values ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        values,
    )
    return recipe_id
