"""The repository stands alone: every document it cites exists in it, and every citation lands.

A fresh clone must carry its own design and contract, so no file may point outside the repository (the notes
the design started from), every `*.md` a file names must exist, every `docs/DESIGN.md §n` (or `CONTRACT`,
`LOCAL_STACK`, `RUNBOOK`; also the short form `DESIGN §n`) must name a numbered section of that document — and,
when a heading is quoted after it (`§5 "Lease and fencing"`), a heading of that section — and every relative
link in docs/ and README.md must reach an existing file and anchor. The checks are plain functions over text, so
the table tests below can prove each of them catches what it is for.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("DESIGN", "CONTRACT", "LOCAL_STACK", "RUNBOOK")

#: Documents that live outside the repository (the notes the design started from). Built from parts so that
#: this file does not cite them itself.
OUTSIDE = re.compile(
    "|".join(
        (
            re.escape(".." + "/shared"),
            re.escape("/work" + "/"),
            r"\b(?:ald-domain|supabase-protocol|anchors)(?:\.md)?\s*§",
            r"\bSTYLE(?:\.md)?\s+§?\d",
        )
    )
)
MD_FILE = re.compile(r"(?<![\w/:.-])((?:\.\./|\./)*[\w-]+(?:/[\w.-]+)*\.md)\b")
SECTION_REF = re.compile(
    r"(?:(?P<doc>(?:docs/)?(?:" + "|".join(DOCS) + r")(?:\.md)?)\s*)?"
    r"§\s*(?P<num>\d+(?:\.\d+)*)"
    r'(?:\s+"(?P<title>[^"\n]+)")?'
)
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+(.*)$")


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str  # as written, without the #s
    number: str | None  # "5" for "## 5. Behaviour"
    title: str  # the text without its number
    slug: str  # the GitHub anchor


# --- reading documents ------------------------------------------------------------------------------------


def slugify(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not `-` or `_`), spaces → `-`."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def headings(markdown: str) -> list[Heading]:
    """The headings outside fenced code, with GitHub's `-1`, `-2` suffixes on repeated anchors."""
    found: list[Heading] = []
    seen: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = HEADING.match(line)
        if fenced or not match:
            continue
        text = match.group(2)
        numbered = NUMBERED.match(text)
        slug = slugify(re.sub(r"`", "", text))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.append(
            Heading(
                level=len(match.group(1)),
                text=text,
                number=numbered.group(1) if numbered else None,
                title=numbered.group(2) if numbered else text,
                slug=f"{slug}-{count}" if count else slug,
            )
        )
    return found


def sections(markdown: str) -> dict[str, list[Heading]]:
    """Numbered section → its heading and every heading under it, until the next heading of its level or above."""
    result: dict[str, list[Heading]] = {}
    current: list[Heading] | None = None
    level = 0
    for h in headings(markdown):
        if h.number is not None:
            current, level = [h], h.level
            result[h.number] = current
        elif current is not None and h.level > level:
            current.append(h)
        elif current is not None:
            current = None
    return result


def _doc_path(name: str) -> Path:
    stem = name.removeprefix("docs/").removesuffix(".md")
    return ROOT / "docs" / f"{stem}.md"


@functools.cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- the checks, each a function of (relative path, text) -------------------------------------------------


def outside_references(rel: str, text: str) -> list[str]:
    return [f"{rel}: refers outside the repository: {m.group(0)!r}" for m in OUTSIDE.finditer(text)]


def missing_md_files(rel: str, text: str) -> list[str]:
    here = (ROOT / rel).parent
    problems = []
    for match in MD_FILE.finditer(text):
        name = match.group(1)
        if not any((base / name).is_file() for base in (ROOT, here, ROOT / "docs")):
            problems.append(f"{rel}: names {name}, which is not in the repository")
    return problems


def unresolved_sections(rel: str, text: str) -> list[str]:
    """`DOC §n ["heading"]` must name a numbered section (and a heading in it); a bare `§n` in docs/*.md means the
    document itself. Other `§` (a protocol specification's, say) are not ours to check."""
    problems = []
    own = rel.startswith("docs/") and rel.endswith(".md")
    for match in SECTION_REF.finditer(text):
        doc, num, title = match.group("doc"), match.group("num"), match.group("title")
        if doc is None and not own:
            continue
        path = _doc_path(doc) if doc else ROOT / rel
        cited = match.group(0).strip()
        if not path.is_file():
            problems.append(f"{rel}: {cited!r}: no {path.relative_to(ROOT)}")
            continue
        section = sections(_read(path)).get(num)
        if section is None:
            problems.append(f"{rel}: {cited!r}: {path.relative_to(ROOT)} has no section {num}")
        elif title is not None and title not in {h.title for h in section}:
            problems.append(f"{rel}: {cited!r}: section {num} of {path.relative_to(ROOT)} has no heading {title!r}")
    return problems


def broken_links(rel: str, text: str) -> list[str]:
    """Relative links `[text](path#anchor)` outside code: the file exists, and the anchor is one of its headings."""
    problems = []
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for match in LINK.finditer(prose):
        target = match.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        name, _, anchor = target.partition("#")
        path = (ROOT / rel).parent / name if name else ROOT / rel
        if not path.exists():
            problems.append(f"{rel}: link {target!r}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in {h.slug for h in headings(_read(path.resolve()))}:
            problems.append(f"{rel}: link {target!r}: no heading with that anchor")
    return problems


Check = Callable[[str, str], list[str]]
CHECKS: tuple[Check, ...] = (outside_references, missing_md_files, unresolved_sections)


# --- the repository ---------------------------------------------------------------------------------------


#: Skipped when the tree is not a git checkout (an unpacked archive): what .gitignore keeps out.
NOT_SOURCES = frozenset({".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
                         "var", "run", "build", "node_modules"})  # fmt: skip


def repository_files() -> list[str]:
    """Tracked and new (not ignored) files, as git sees them: no .venv, caches or build output."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file()
            and not NOT_SOURCES.intersection(p.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in p.parts)
        )
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def text_of(rel: str) -> str | None:
    try:
        return (ROOT / rel).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def markdown_files() -> list[str]:
    return ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]


# --- the tests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_no_file_in_the_repository_cites_what_it_does_not_contain(check: Check) -> None:
    problems = [p for rel in repository_files() if (text := text_of(rel)) is not None for p in check(rel, text)]
    assert problems == []


@pytest.mark.parametrize("rel", markdown_files(), ids=str)
def test_every_relative_link_in_the_docs_lands(rel: str) -> None:
    assert broken_links(rel, _read(ROOT / rel)) == []


def test_the_design_keeps_its_nine_numbered_sections() -> None:
    """Code cites `docs/DESIGN.md §1`…`§9`: the numbers are stable, one heading each."""
    numbers = [h.number for h in headings(_read(ROOT / "docs" / "DESIGN.md")) if h.number and h.level == 2]
    assert numbers == [str(n) for n in range(1, 10)]


@pytest.mark.parametrize("doc", ["DESIGN", "CONTRACT", "LOCAL_STACK"], ids=str)
def test_section_numbers_are_unique(doc: str) -> None:
    numbers = [h.number for h in headings(_read(_doc_path(doc))) if h.number]
    assert sorted(n for n in set(numbers) if numbers.count(n) > 1) == []


def test_the_readme_links_every_document_in_docs() -> None:
    linked = {m.group(1).partition("#")[0] for m in LINK.finditer(_read(ROOT / "README.md"))}
    assert sorted(f for f in markdown_files()[1:] if f not in linked) == []


def test_every_setting_is_in_the_contracts_table_of_environment_variables() -> None:
    section = sections(_read(ROOT / "docs" / "CONTRACT.md"))["7"][0]
    text = _read(ROOT / "docs" / "CONTRACT.md").split(f"## {section.text}", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, flags=re.M))
    assert (sorted(set(Settings.model_fields) - documented), sorted(documented - set(Settings.model_fields))) == (
        [],
        [],
    ), "(settings missing from, variables stale in) docs/CONTRACT.md §7"


# --- the checks catch what they are for (samples built from parts, so this file does not trip the scan) -----

SHARED = ".." + "/shared"


@pytest.mark.parametrize(
    ("check", "rel", "text", "expected"),
    [
        (outside_references, "agent/x.py", f"see {SHARED}/DESIGN.md", 1),
        (outside_references, "agent/x.py", "(ald-" + "domain §3.2)", 1),
        (outside_references, "agent/x.py", "shutdown (STY" + "LE 8)", 1),
        (outside_references, "agent/x.py", "see docs/DESIGN.md §5", 0),
        (missing_md_files, "agent/x.py", "supabase-protocol" + ".md", 1),
        (missing_md_files, "agent/x.py", "docs/RUNBOOK.md and bench/RESULTS.md", 0),
        (missing_md_files, "docs/DESIGN.md", "[r](../bench/RESULTS.md)", 0),
        (missing_md_files, "agent/x.py", "https://example.org/NOTES.md", 0),
        (unresolved_sections, "agent/x.py", "docs/DESIGN.md " + "§99", 1),
        (unresolved_sections, "agent/x.py", "DESIGN " + "§10", 1),
        (unresolved_sections, "agent/x.py", "docs/DESIGN.md " + '§5 "No such heading"', 1),
        (unresolved_sections, "agent/x.py", "docs/NOTES" + ".md §1", 0),
        (unresolved_sections, "agent/x.py", 'docs/DESIGN.md §5 "Lease and fencing"; DESIGN §9', 0),
        (unresolved_sections, "agent/x.py", "docs/CONTRACT.md\n§7", 0),
        (unresolved_sections, "agent/x.py", "Modbus Application Protocol v1.1b3 " + "§99", 0),
        (unresolved_sections, "docs/CONTRACT.md", "see " + "§42", 1),
        (broken_links, "docs/DESIGN.md", "[c](CONTRACT.md#7-environment-variables)", 0),
        (broken_links, "docs/DESIGN.md", "[c](CONTRACT.md#" + "no-such-anchor)", 1),
        (broken_links, "docs/DESIGN.md", "[c](NO_SUCH" + ".md)", 1),
        (broken_links, "docs/DESIGN.md", "[s](#" + "no-such-section)", 1),
        (broken_links, "docs/DESIGN.md", "[s](#6-http) [w](https://example.org/x#y)", 0),
    ],
    ids=[
        "shared-notes",
        "reference-note-section",
        "style-rule",
        "docs-reference-is-fine",
        "missing-md-file",
        "existing-md-files",
        "relative-to-the-citing-file",
        "urls-are-not-files",
        "design-section-missing",
        "short-form-section-missing",
        "heading-not-in-section",
        "other-documents-are-not-numbered-ours",
        "section-and-heading-exist",
        "reference-across-a-line-break",
        "foreign-specification-sections",
        "bare-section-in-a-doc-means-itself",
        "link-and-anchor-exist",
        "anchor-missing",
        "file-missing",
        "own-anchor-missing",
        "own-anchor-and-urls",
    ],
)
def test_each_check_catches_what_it_is_for(check: Check, rel: str, text: str, expected: int) -> None:
    assert len(check(rel, text)) == expected, check(rel, text)


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("## 7. Environment variables", "7-environment-variables"),
        ("### machine_commands", "machine_commands"),
        ("#### One guarded path to the PLC", "one-guarded-path-to-the-plc"),
        ("## 5. Row level security and privileges", "5-row-level-security-and-privileges"),
        ("### `parameters` rows", "parameters-rows"),
        ("## Is the agent healthy? — `test_health_check.py`", "is-the-agent-healthy--test_health_checkpy"),
    ],
    ids=["numbered", "underscore", "capitals", "long", "code", "punctuation"],
)
def test_anchors_are_githubs(heading: str, slug: str) -> None:
    assert [h.slug for h in headings(heading)] == [slug]
