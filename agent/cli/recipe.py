"""`recipe validate|plan`: check a recipe (file or Supabase) against the register map before running it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.cloud import cloud_for
from agent.config import Settings
from agent.errors import RecipeError
from agent.plc import RegisterMap, map_from_rows
from agent.plc_setup import load_register_map
from agent.recipes import Recipe, compile_recipe, validate

__all__ = ["add_parsers", "run"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    recipe = sub.add_parser("recipe", help="validate a recipe or show its expanded plan")
    kinds = recipe.add_subparsers(dest="recipe_command", metavar="RECIPE_COMMAND", required=True)
    for name, text in (("validate", "report every problem of a recipe"), ("plan", "expanded steps and time")):
        parser = kinds.add_parser(name, help=text)
        parser.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a recipe JSON document")
        parser.add_argument("--id", dest="recipe_id", help="a recipe in Supabase instead of a file")
    kinds.choices["plan"].add_argument("--steps", action="store_true", help="list every expanded step")
    kinds.choices["plan"].add_argument("--json", action="store_true")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if (args.file is None) == (args.recipe_id is None):
        raise RecipeError("give a recipe FILE or --id ID (one of them)")
    if args.file is not None:
        recipe = _from_file(args.file)
        register_map = load_register_map(settings)
    else:
        recipe, register_map = await _from_cloud(settings, args.recipe_id)
    problems = validate(recipe, register_map)
    if problems:
        raise RecipeError(f"recipe '{recipe.name}' has {len(problems)} problem(s):\n" + "\n".join(map(str, problems)))
    plan = compile_recipe(recipe)
    if args.recipe_command == "validate":
        print(f"ok: '{recipe.name}' v{recipe.version}: {plan.total_steps} steps, {_duration(plan.total_ms)} planned")
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "name": recipe.name,
                    "total_steps": plan.total_steps,
                    "total_ms": plan.total_ms,
                    "steps": [
                        {"path": s.path, "type": s.type, "name": s.name, "planned_ms": s.planned_ms} for s in plan.steps
                    ]
                    if args.steps
                    else None,
                }
            )
        )
        return 0
    if args.steps:
        for step in plan.steps:
            cycle = " ".join(f"{loop.iteration}/{loop.count}" for loop in step.loops)
            planned = f"{step.planned_ms:>9.0f} ms"
            print(f"{step.index:>6}  {step.path:<10} {cycle:<14} {step.type:<9} {planned}  {step.name}")

    print(f"'{recipe.name}' v{recipe.version}: {plan.total_steps} steps, {_duration(plan.total_ms)} planned")
    return 0


def _from_file(path: Path) -> Recipe:
    """The recipe in `path`; every way a file can be unusable is a `RecipeError` naming it (exit 2)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{path}: not JSON: {exc}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits (CPython's int conversion limit)
        raise RecipeError(f"{path}: not a usable JSON document: {exc}") from None
    except RecursionError:
        raise RecipeError(f"{path}: JSON nested too deeply") from None
    try:
        return Recipe.from_document(document)
    except RecursionError:
        raise RecipeError(f"{path}: recipe nested too deeply") from None


async def _from_cloud(settings: Settings, recipe_id: str) -> tuple[Recipe, RegisterMap]:
    from agent.commands import load_recipe

    async with cloud_for(settings) as cloud:
        recipe = await load_recipe(cloud, recipe_id)
        rows = await cloud.load_parameters(str(settings.MACHINE_ID))
    return recipe, map_from_rows(rows) if rows else load_register_map(settings)


def _duration(ms: float) -> str:
    seconds = round(ms / 1000)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
