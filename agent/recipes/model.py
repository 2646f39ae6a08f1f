"""Recipes as data: the step tree, the typed config of each step type, and the two ways in (DB rows, JSON).

Pure: pydantic models and functions, no I/O. Loading never raises on *content*: a recipe with a bad step,
an orphan row or a cycle still loads, with what it could not place recorded in `Recipe.load_problems`, so
`validate()` can report every problem at once instead of the first one.

Step paths are the 1-based positions among siblings (ordered by `sequence`), joined by "/": in the seeded
Al2O3 recipe the loop is "4" and its TMA pulse "4/1". Positions rather than raw `sequence` values, because
sequences may have gaps (0, 10, 20) and an engineer reads "step 4" the way the dashboard lists it.

The JSON document format (`Recipe.from_document`, `Recipe.to_snapshot`), as an engineer writes it::

    {
      "format": "ald-recipe/1",                 # optional; when present must be this value
      "id": "…uuid…",                           # optional
      "name": "Al2O3 TMA/H2O", "version": 1, "description": "…",
      "steps": [
        {"type": "parameter", "name": "Chamber to 200 °C",
         "config": {"parameter": "chamber_heater.temperature_sp", "value": 200,
                    "wait": {"tolerance": 2, "timeout_ms": 1800000}}},
        {"type": "loop", "name": "ALD cycle", "config": {"count": 100}, "steps": [
          {"type": "valve", "name": "TMA pulse", "config": {"valve": 1, "duration_ms": 20}},
          {"type": "purge", "name": "N2 purge", "config": {"duration_ms": 3000, "gas": "N2", "flow_sccm": 20}}
        ]}
      ]
    }

Each step is exactly {type, name?, config, steps?, id?}; `config` has the same shape as `recipe_steps.config`
(docs/CONTRACT.md §2), children of a loop go in `steps`, in order. One shape for hand-written files, the DB snapshot
and `process_runs.recipe_snapshot`.

Bounded: a source with more than `MAX_RECIPE_STEPS` steps is counted (`Recipe.stored_steps`), not built, so
loading it costs no more than counting; `validate` reports the breach. Inputs quoted in problems are clipped.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.errors import RecipeError
from agent.limits import MAX_INTEGER, MAX_QUOTE_CHARS, MAX_RECIPE_STEPS
from agent.quoting import clip, quote
from agent.recipes.config import (
    LoopConfig,
    ParameterConfig,
    PurgeConfig,
    StepConfig,
    StepType,
    ValveConfig,
    WaitConfig,
    WaitSpec,
    integral_number,
    parse_config,
)

__all__ = [
    "DOCUMENT_FORMAT",
    "LoopConfig",
    "ParameterConfig",
    "Problem",
    "PurgeConfig",
    "Recipe",
    "RecipeStep",
    "StepConfig",
    "StepType",
    "ValveConfig",
    "WaitConfig",
    "WaitSpec",
    "parse_config",
]

DOCUMENT_FORMAT = "ald-recipe/1"
#: Loading stops descending below this depth (and says so), so a pathological file cannot exhaust the
#: stack; the operational limit is `validate(max_depth=…)`, far below.
MAX_LOAD_DEPTH = 64
_STEP_KEYS = {"type", "name", "config", "steps", "id"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a recipe, located by step path ("4/1") and name; `path` "" = the recipe itself."""

    path: str
    name: str
    message: str

    @property
    def where(self) -> str:
        if not self.path:
            return "recipe"
        return f"{self.path} {quote(self.name)}" if self.name else self.path

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


# --- the tree -------------------------------------------------------------------------------------


class RecipeStep(BaseModel):
    """One recipe step as stored: `type` and `config` raw — even a config that is not an object, so that
    `validate` reports it with the rest — and children in `steps`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str
    name: str = ""
    config: Any = Field(default_factory=dict)
    steps: tuple[RecipeStep, ...] = ()
    id: str | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type, "name": self.name, "config": copy.deepcopy(self.config)}
        if self.steps:
            doc["steps"] = [child.to_document() for child in self.steps]
        if self.id is not None:
            doc["id"] = self.id
        return doc


class Recipe(BaseModel):
    """A recipe: identity plus the ordered step tree. `load_problems` = what loading could not place;
    `stored_steps` = how many steps its source held (None when built in code), the tree being left empty
    when that is more than `MAX_RECIPE_STEPS`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str | None = None
    name: str
    version: int = 1
    description: str | None = None
    steps: tuple[RecipeStep, ...] = ()
    load_problems: tuple[Problem, ...] = ()
    stored_steps: int | None = None

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-able document (the format above) for `process_runs.recipe_snapshot`; `from_document` reads it."""
        return {
            "format": DOCUMENT_FORMAT,
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "steps": [step.to_document() for step in self.steps],
        }

    @classmethod
    def from_document(cls, obj: Mapping[str, Any] | str) -> Recipe:
        """Load the JSON document format (a mapping or JSON text). Raises `RecipeError` only when `obj` is
        not a recipe document at all; everything else lands in `load_problems`."""
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except (json.JSONDecodeError, ValueError) as exc:  # ValueError: an integer past 4,300 digits
                raise RecipeError(f"recipe document is not valid JSON: {clip(str(exc))}") from exc
        if not isinstance(obj, Mapping):
            raise RecipeError(f"recipe document must be a JSON object, got {type(obj).__name__}")
        problems: list[Problem] = []
        fmt = obj.get("format", DOCUMENT_FORMAT)
        if fmt != DOCUMENT_FORMAT:
            problems.append(Problem("", "", f"format {quote(fmt)} is not {DOCUMENT_FORMAT!r}"))
        unknown = sorted(map(str, set(obj) - {"format", "id", "name", "version", "description", "steps"}))
        if unknown:
            problems.append(Problem("", "", f"unknown fields {_quote_all(unknown)}"))
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Problem("", "", "name is missing"))
            name = _text(name or "")
        version = integral_number(obj.get("version", 1))
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_INTEGER:
            problems.append(Problem("", "", f"version must be an integer from 1 to 2**64-1, got {quote(version)}"))
            version = 1
        stored = _count_document_steps(obj.get("steps"))
        steps = _document_steps(obj.get("steps"), "", 1, problems) if stored <= MAX_RECIPE_STEPS else ()
        return cls(
            id=_text_or_none(obj.get("id")),
            name=name,
            version=version,
            description=_text_or_none(obj.get("description")),
            steps=steps,
            load_problems=tuple(problems),
            stored_steps=stored,
        )

    @classmethod
    def from_rows(cls, recipe_row: Mapping[str, Any], step_rows: Iterable[Mapping[str, Any]]) -> Recipe:
        """Build the tree from `recipes` + flat `recipe_steps` rows (as PostgREST returns them).

        Children are ordered by `sequence`. Rows whose parent is missing (dangling links) or whose parent
        chain loops are left out of the tree and reported in `load_problems`; nothing recurses forever.
        """
        given = list(step_rows)
        if len(given) > MAX_RECIPE_STEPS:  # counted, not built
            return cls(
                id=_text_or_none(recipe_row.get("id")),
                name=str(recipe_row.get("name") or ""),
                stored_steps=len(given),
            )
        rows = [dict(r) for r in given]
        problems: list[Problem] = []
        by_id: dict[str, dict[str, Any]] = {}
        for row in rows:
            rid = str(row.get("id"))
            if rid in by_id:
                problems.append(Problem("", "", f"step row {rid} appears twice"))
            by_id[rid] = row
        children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for row in by_id.values():
            parent = row.get("parent_step_id")
            children[None if parent is None else str(parent)].append(row)
        placed: set[str] = set()
        steps = _row_steps(None, "", 1, children, placed, problems)
        problems.extend(_unplaced(by_id, placed))
        recipe_id = recipe_row.get("id")
        for row in rows:
            owner = row.get("recipe_id")
            if recipe_id is not None and owner not in (None, recipe_id) and str(owner) != str(recipe_id):
                problems.append(Problem("", "", f"step row {row.get('id')} belongs to recipe {row.get('recipe_id')}"))
        version = integral_number(recipe_row.get("version", 1))
        return cls(
            id=_text_or_none(recipe_id),
            name=str(recipe_row.get("name") or ""),
            version=version if isinstance(version, int) and not isinstance(version, bool) and version >= 1 else 1,
            description=_text_or_none(recipe_row.get("description")),
            steps=steps,
            load_problems=tuple(problems),
            stored_steps=len(rows),
        )


def _quote_all(items: Iterable[object]) -> str:
    """Quoted, comma-separated, the whole clipped: an object may carry a thousand unknown fields."""
    return clip(", ".join(quote(item) for item in items), MAX_QUOTE_CHARS)


def _count_document_steps(raw: object) -> int:
    """Steps in a document's tree, nested ones included, without building any (an iterative walk)."""
    count, stack = 0, [raw]
    while stack:
        items = stack.pop()
        if isinstance(items, list):
            count += len(items)
            stack.extend(item.get("steps") for item in items if isinstance(item, Mapping))
    return count


def _text(value: object) -> str:
    """Text as given; anything else as `quote` shows it (`str` fails on an integer past 4,300 digits)."""
    return value if isinstance(value, str) else quote(value)


def _text_or_none(value: object) -> str | None:
    return None if value is None else _text(value)


def _document_steps(raw: object, parent: str, depth: int, problems: list[Problem]) -> tuple[RecipeStep, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Problem(parent, "", f"steps must be a list, got {type(raw).__name__}"))
        return ()
    if depth > MAX_LOAD_DEPTH:
        problems.append(Problem(parent, "", f"nested deeper than {MAX_LOAD_DEPTH} levels; not loaded"))
        return ()
    out = []
    for position, item in enumerate(raw, start=1):
        path = f"{parent}/{position}" if parent else str(position)
        if not isinstance(item, Mapping):
            problems.append(Problem(path, "", f"a step must be a JSON object, got {type(item).__name__}"))
            continue
        name = _text(item.get("name") or "")
        unknown = sorted(map(str, set(item) - _STEP_KEYS))
        if unknown:
            problems.append(Problem(path, name, f"unknown fields {_quote_all(unknown)}"))
        out.append(
            RecipeStep(
                type=_text(item.get("type") or ""),
                name=name,
                config=copy.deepcopy(item.get("config", {})),
                steps=_document_steps(item.get("steps"), path, depth + 1, problems),
                id=_text_or_none(item.get("id")),
            )
        )
    return tuple(out)


def _row_steps(
    parent_id: str | None,
    parent_path: str,
    depth: int,
    children: Mapping[str | None, list[dict[str, Any]]],
    placed: set[str],
    problems: list[Problem],
) -> tuple[RecipeStep, ...]:
    rows = sorted(children.get(parent_id, ()), key=lambda r: (_sort_key(r.get("sequence")), str(r.get("id"))))
    if rows and depth > MAX_LOAD_DEPTH:
        problems.append(Problem(parent_path, "", f"nested deeper than {MAX_LOAD_DEPTH} levels; not loaded"))
        stack = [str(r.get("id")) for r in rows]
        while stack:  # the cut-off rows are accounted for by this problem, not reported as unreachable
            rid = stack.pop()
            if rid not in placed:
                placed.add(rid)
                stack.extend(str(r.get("id")) for r in children.get(rid, ()))
        return ()
    out = []
    seen_sequences: set[object] = set()
    for position, row in enumerate(rows, start=1):
        rid = str(row.get("id"))
        placed.add(rid)
        path = f"{parent_path}/{position}" if parent_path else str(position)
        name = str(row.get("name") or "")
        if row.get("sequence") in seen_sequences:
            problems.append(Problem(path, name, f"sequence {row.get('sequence')} is used twice among its siblings"))
        seen_sequences.add(row.get("sequence"))
        config = row.get("config")
        if isinstance(config, str):  # a driver that returns jsonb as text
            with contextlib.suppress(json.JSONDecodeError):
                config = json.loads(config)
        out.append(
            RecipeStep(
                type=str(row.get("type") or ""),
                name=name,
                config=copy.deepcopy(config),
                steps=_row_steps(rid, path, depth + 1, children, placed, problems),
                id=rid,
            )
        )
    return tuple(out)


def _sort_key(sequence: object) -> tuple[int, float]:
    if isinstance(sequence, int | float) and not isinstance(sequence, bool):
        return (0, float(sequence))
    return (1, 0.0)  # a missing sequence sorts last; validation of rows is the database's job


def _unplaced(by_id: Mapping[str, Mapping[str, Any]], placed: set[str]) -> list[Problem]:
    """Explain every row not reachable from the top level: a dangling parent link, a cycle, or a row below
    one of those. Linear in the number of rows (each row is walked once)."""
    unplaced = [rid for rid in by_id if rid not in placed]
    parent_of = {rid: str(by_id[rid].get("parent_step_id")) for rid in unplaced}
    problems: list[Problem] = []
    broken: set[str] = set()
    for rid in unplaced:
        if parent_of[rid] not in by_id:
            broken.add(rid)
            name = by_id[rid].get("name") or ""
            where = f"step row {clip(rid)} {quote(name)}"
            problems.append(Problem("", "", f"{where}: parent {clip(parent_of[rid])} is not a step of this recipe"))
    done: set[str] = set()
    for start in unplaced:
        walk: dict[str, int] = {}  # row → position in this walk
        node = start
        while node in parent_of and node not in done and node not in walk:
            walk[node] = len(walk)
            node = parent_of[node]
        if node in walk:
            cycle = list(walk)[walk[node] :]
            broken.update(cycle)
            problems.append(Problem("", "", f"parent links form a cycle: {clip(' → '.join([*cycle, cycle[0]]))}"))
        done.update(walk)
    for rid in unplaced:
        if rid not in broken:
            name = by_id[rid].get("name") or ""
            problems.append(Problem("", "", f"step row {clip(rid)} {quote(name)} hangs below a broken parent link"))
    return problems
