"""The code keeps the layering that docs/DESIGN.md §2 "Layout and layering" draws.

The tables of that section are the rule and this test reads them: who may import whom inside `agent`, which
foreign library lives where, and which modules are pure. Every import in `agent/` and `supalocal/` is parsed
with `ast` (imports inside functions too), so a violation fails with the file, the line and the rule.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "DESIGN.md"

#: Imports the rules would refuse, each with the reason it stands; the test fails when one no longer occurs.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("agent/config.py", "agent.plc.protocol"): (
        "Settings bounds PLC_BULK_READ_SIZE by MAX_READ_REGISTERS, which agent.plc does not re-export"
    ),
}
#: What a pure module may not import (docs/DESIGN.md §2 "Pure modules"), besides the foreign libraries.
IO_MODULES = frozenset({"asyncio", "socket", "time", "threading", "sqlite3", "logging", "loguru"})


@dataclass(frozen=True, slots=True)
class Import:
    path: str  # relative to the repository root
    line: int
    module: str  # the module named in the statement (for `from P import name`: P, or P.name if a submodule)

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


# --- the rules, read from docs/DESIGN.md -----------------------------------------------------------------


def _section(title: str) -> str:
    text = DESIGN.read_text(encoding="utf-8")
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^#{{2,3}} )", text, flags=re.M | re.S)
    assert match, f"docs/DESIGN.md has no section '### {title}'"
    return match.group(1)


def _table(title: str) -> list[tuple[list[str], list[str]]]:
    """The rows of the first table under `title`, as the backticked names of their first two cells."""
    rows = []
    for line in _section(title).splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) < 2 or set(cells[0]) <= {"-", " ", ":"} or not cells[0].startswith("`"):
            continue
        rows.append((re.findall(r"`([^`]+)`", cells[0]), re.findall(r"`([^`]+)`", cells[1])))
    assert rows, f"docs/DESIGN.md '### {title}' has no table"
    return rows


@functools.cache
def allowed_imports() -> dict[str, frozenset[str]]:
    """Unit → the agent units it may import."""
    return {names[0]: frozenset(allowed) for names, allowed in _table("Who may import whom")}


@functools.cache
def library_homes() -> dict[str, frozenset[str]]:
    """Foreign top-level module → the units that may import it."""
    return {lib: frozenset(homes) for libs, homes in _table("Foreign libraries") for lib in libs}


@functools.cache
def pure_modules() -> list[str]:
    """Paths of the pure modules; a bare file name shares the directory of the path before it."""
    paths: list[str] = []
    for names, _ in _table("Pure modules"):
        directory = ""
        for name in names:
            if "/" in name:
                directory = name.rsplit("/", 1)[0]
                paths.append(name)
            else:
                paths.append(f"{directory}/{name}")
    return paths


# --- the code ---------------------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The layering unit of a module: `agent.plc.sim`, a package of `agent`, a top-level module, or `supalocal`."""
    parts = module.split(".")
    if parts[0] != "agent":
        return parts[0]
    if parts[:3] == ["agent", "plc", "sim"]:
        return "agent.plc.sim"
    return ".".join(parts[:2])


@functools.cache
def _exported(package: str) -> set[str]:
    """The names in a package's `__all__` (a function may share its name with a module: `recipes.validate`)."""
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    if not init.is_file():
        return set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def _is_submodule(package: str, name: str) -> bool:
    base = ROOT.joinpath(*package.split("."), name)
    is_module = base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()
    return is_module and name not in _exported(package)


def imports_of(path: Path) -> Iterator[Import]:
    return parse_imports(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())


def parse_imports(source: str, rel: str) -> Iterator[Import]:
    for node in ast.walk(ast.parse(source, filename=rel)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{rel}:{node.lineno}: relative import (the layering test resolves absolute ones)"
            yield Import(rel, node.lineno, node.module)
            for alias in node.names:  # `from agent.plc import codec` reaches a submodule too
                if _is_submodule(node.module, alias.name):
                    yield Import(rel, node.lineno, f"{node.module}.{alias.name}")


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@functools.cache
def all_imports() -> list[tuple[str, Import]]:
    """(importing module, import) for every import statement in agent/ and supalocal/."""
    return [(_module_name(p), i) for pkg in ("agent", "supalocal") for p in sources(pkg) for i in imports_of(p)]


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


@functools.cache
def agent_units() -> set[str]:
    return {unit_of(_module_name(p)) for p in sources("agent")}


def _violations(found: list[Import]) -> list[str]:
    return [str(i) for i in found if (i.path, i.module) not in KNOWN_EXCEPTIONS]


# --- the tests --------------------------------------------------------------------------------------------


def test_the_layering_table_names_every_unit_of_the_agent_and_nothing_else() -> None:
    table = set(allowed_imports())
    assert (sorted(agent_units() - table), sorted(table - agent_units())) == ([], []), (
        "(units missing from, units stale in) the table of docs/DESIGN.md §2 'Who may import whom'"
    )


def test_the_layering_table_only_allows_units_that_exist() -> None:
    unknown = {f"{unit} → {dep}" for unit, deps in allowed_imports().items() for dep in deps - agent_units()}
    assert sorted(unknown) == []


@pytest.mark.parametrize("unit", sorted(agent_units()), ids=str)
def test_a_unit_imports_only_what_the_layering_table_allows(unit: str) -> None:
    allowed = allowed_imports().get(unit, frozenset())
    found = [
        i
        for importer, i in all_imports()
        if unit_of(importer) == unit and i.top == "agent" and unit_of(i.module) not in {unit, *allowed}
    ]
    assert _violations(found) == [], f"{unit} may import only {sorted(allowed)} (docs/DESIGN.md §2)"


def test_packages_are_imported_only_through_their_init() -> None:
    """`from agent.plc import PlcDevice` is the public surface; `agent.plc.device` from outside `agent.plc` is
    not (the simulator, inside `agent/plc/`, may use the package's modules)."""
    found = [
        i
        for importer, i in all_imports()
        if i.top == "agent" and i.module != unit_of(i.module) and not _inside(importer, unit_of(i.module))
    ]
    assert _violations(found) == []


def test_every_known_exception_still_occurs() -> None:
    occurring = {(i.path, i.module) for _, i in all_imports()}
    assert sorted(set(KNOWN_EXCEPTIONS) - occurring) == [], "remove the exceptions that were fixed"


@pytest.mark.parametrize("library", sorted(library_homes()), ids=str)
def test_a_foreign_library_is_imported_only_in_its_home(library: str) -> None:
    homes = library_homes()[library]
    found = [i for importer, i in all_imports() if i.top == library and unit_of(importer) not in homes]
    assert _violations(found) == [], f"{library} belongs to {sorted(homes)} only (docs/DESIGN.md §2)"


def test_the_local_stack_does_not_import_the_agent() -> None:
    found = [i for importer, i in all_imports() if unit_of(importer) == "supalocal" and i.top == "agent"]
    assert _violations(found) == []


@pytest.mark.parametrize("path", pure_modules(), ids=str)
def test_a_pure_module_does_no_io(path: str) -> None:
    assert (ROOT / path).is_file(), f"docs/DESIGN.md §2 lists {path}, which does not exist"
    forbidden = IO_MODULES | set(library_homes())
    found = [i for i in imports_of(ROOT / path) if i.top in forbidden - {"supalocal"}]
    assert _violations(found) == []


def test_the_parser_sees_plain_from_and_submodule_imports_inside_functions_too() -> None:
    source = "import pymodbus\ndef f():\n    from agent.plc import codec\n    from agent.cloud import CloudClient\n"
    modules = [(i.line, i.module) for i in parse_imports(source, "agent/probe.py")]
    assert modules == [(1, "pymodbus"), (3, "agent.plc"), (3, "agent.plc.codec"), (4, "agent.cloud")]
