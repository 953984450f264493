"""The README and docs/ hold together: every Markdown link leads somewhere, the README stays the
front door (under 12,000 bytes), and the package map of docs/development.md names every module.

Relative links must name a file or folder of the repository, and a `#anchor` one of the target
file's headings as GitHub makes it (lower case, spaces to '-', punctuation other than '-' and '_'
removed, a repeated heading gets -1, -2, ...). Absolute http(s) links are only checked to be well
formed: the tests have no network. Code blocks and inline code are not Markdown and are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]
README = PROJECT_ROOT / "README.md"
DEVELOPMENT = PROJECT_ROOT / "docs" / "development.md"
README_LIMIT = 12_000
MAPPED_PACKAGES = ("breadth_assets", "breadth_assets_testing")

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?\1", re.DOTALL)
LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text], or ![alt], brackets one level deep inside
    r"\(\s*(<[^>\n]*>|[^\s()]+)"  # (target or (<target>
    r"(?:\s+\"[^\"]*\")?\s*\)"  # an optional "title", then )
)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
MAP_FOLDER = re.compile(r"^#{2,6}\s+`([^`]+/)`\s*$")
MAP_ROW = re.compile(r"^\|\s*`([^`/]+\.py)`")


def markdown_files() -> list[Path]:
    return [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def outside_code_blocks(text: str) -> list[str]:
    """The lines of `text`, those of fenced code blocks (fences included) blanked out."""
    lines, fence = [], None
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)[0]
        elif fence is not None:
            if opened and opened.group(1)[0] == fence:
                fence = None
        else:
            lines.append(line)
            continue
        lines.append("")
    return lines


def prose(text: str) -> str:
    """The text with code blocks and inline code blanked out, line numbers kept."""
    blanked = "\n".join(outside_code_blocks(text))
    return INLINE_CODE.sub(lambda code: re.sub(r"[^\n]", " ", code.group(0)), blanked)


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every inline link, image and link reference definition."""
    body = prose(text)
    for pattern in (LINK, REFERENCE):
        for found in pattern.finditer(body):
            yield body.count("\n", 0, found.start(1)) + 1, found.group(1)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8")
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for line in outside_code_blocks(text):
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def problem(source: Path, target: str, root: Path = PROJECT_ROOT) -> str | None:
    """Why a link of `source` (a file of the repository at `root`) to `target` is broken."""
    target = target.removeprefix("<").removesuffix(">")
    if any(char.isspace() for char in target):
        return "has white space"
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        return None if HOST.match(host) else f"is not a well-formed {parts.scheme} URL"
    if parts.scheme == "mailto":
        return None if "@" in parts.path else "is not a well-formed mailto link"
    if parts.scheme or parts.netloc:
        return f"has a scheme the docs do not use ({parts.scheme or '//'})"
    path = unquote(parts.path)
    if not path:
        file = source
    elif path.startswith("/"):
        file = (root / path.lstrip("/")).resolve()
    else:
        file = (source.parent / path).resolve()
    if file != root and root not in file.parents:
        return "leads outside the repository"
    if not file.exists():
        return f"{file.relative_to(root)} does not exist"
    if parts.fragment:
        if file.suffix != ".md":
            return f"#{parts.fragment} points into {file.name}, which has no Markdown headings"
        if unquote(parts.fragment) not in anchors(file):
            return f"{file.relative_to(root)} has no heading #{parts.fragment}"
    return None


def broken_links(files: list[Path], root: Path = PROJECT_ROOT) -> list[str]:
    return [
        f"{file.relative_to(root)}:{line}: ({target}) {why}"
        for file in files
        for line, target in links(file.read_text(encoding="utf-8"))
        if (why := problem(file, target, root))
    ]


def test_every_link_leads_somewhere():
    broken = broken_links(markdown_files())
    assert broken == [], "\n".join(broken)


def test_the_links_are_found():
    readme = [target for _, target in links(README.read_text(encoding="utf-8"))]
    assert len(readme) >= 10, readme
    assert "docs/images/breadth-asset.png" in readme
    assert any(target.startswith("https://") for target in readme)
    assert any("#" in target for target in readme)


def test_the_readme_is_the_front_door():
    size = README.stat().st_size
    assert size < README_LIMIT, (
        f"README.md is {size} bytes, over {README_LIMIT}: move detail to docs/ and link to it"
    )


def test_slugs_are_githubs():
    assert slug("Where breadth must start: one rule") == "where-breadth-must-start-one-rule"
    assert slug("intraday_prices table") == "intraday_prices-table"
    assert slug("`upstox`") == "upstox"
    assert slug("Dagster's bookkeeping") == "dagsters-bookkeeping"
    assert slug("Every day, without anyone clicking") == "every-day-without-anyone-clicking"
    assert slug("PostgreSQL for Dagster") == "postgresql-for-dagster"
    assert slug("Re-run *this*") == "re-run-this"


def test_the_check_finds_broken_links(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "other.md").write_text("# Other\n\n## A section\n\n## A section\n")
    page = root / "docs" / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md#a-section) [ok](other.md#a-section-1) [ok](#page) [ok](../docs/)\n"
        "[ok](https://dagster.io/docs) ![ok](other.md) [ok](</docs/other.md>)\n"
        "[missing file](nowhere.md) [missing anchor](other.md#no-such)\n"
        "[bad url](https://) [outside](../../x.md)\n"
        "`[in code](nowhere.md)`\n\n"
        "```\n[in a block](nowhere.md)\n# not a heading\n```\n\n"
        "[split\nacross lines](gone.md) [code heading](#not-a-heading)\n\n"
        "[ref]: missing-ref.md\n"
    )
    found = broken_links([page], root)
    assert [line.split(": ", 1)[1] for line in found] == [
        "(nowhere.md) docs/nowhere.md does not exist",
        "(other.md#no-such) docs/other.md has no heading #no-such",
        "(https://) is not a well-formed https URL",
        "(../../x.md) leads outside the repository",
        "(gone.md) docs/gone.md does not exist",
        "(#not-a-heading) docs/page.md has no heading #not-a-heading",
        "(missing-ref.md) docs/missing-ref.md does not exist",
    ]
    assert [line.split(":", 2)[1] for line in found] == ["5", "5", "6", "6", "15", "15", "17"]


def mapped_modules() -> set[str]:
    """The modules docs/development.md's package map lists, as paths from the project root."""
    listed, folder = set(), None
    for line in outside_code_blocks(DEVELOPMENT.read_text(encoding="utf-8")):
        if line.startswith("#"):
            heading = MAP_FOLDER.match(line)
            folder = heading.group(1) if heading else None
        elif folder and (row := MAP_ROW.match(line)):
            listed.add(folder + row.group(1))
    return listed


def test_the_package_map_names_every_module():
    modules = {
        path.relative_to(PROJECT_ROOT).as_posix()
        for package in MAPPED_PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    listed = mapped_modules()
    assert len(listed) > 50
    missing, gone = sorted(modules - listed), sorted(listed - modules)
    assert (missing, gone) == ([], []), (
        "docs/development.md's package map is out of date: "
        f"add {missing} (a row under its folder's heading), remove {gone}"
    )
