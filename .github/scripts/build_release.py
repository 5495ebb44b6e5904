#!/usr/bin/env python3
"""Build the release asset HACS installs: stamp the tag's version, then zip the integration.

Usage: ``.github/scripts/build_release.py TAG [--root DIR] [--out DIR]``

* ``TAG`` is the release tag, ``v1.2.0`` or ``1.2.0`` (``1.3.0b1``, ``1.3.0rc2`` for
  pre-releases). The version is written, in place under ``--root``, into the integration's
  ``manifest.json`` (which must have a ``version``), the ``[project]`` version of every
  ``pyproject.toml`` that declares one statically (the repository's and, where the protocol
  library has its own, the library's), and a ``__version__ = "..."`` line in the library's
  ``__init__.py`` or ``_version.py`` where there is one. Only the version strings change; every
  other byte of those files stays as committed.
* The zip is named by ``hacs.json``'s ``filename`` (``zip_release`` must be on, so HACS
  downloads this asset rather than the tagged tree) and holds the integration's folder
  contents at its root (HACS unpacks it into ``custom_components/<domain>/``), without caches.
  Entries are sorted and dated 1980-01-01, so the same tree always gives the same bytes.

It edits files in place: run it in a throwaway checkout (the release workflow does). Standard
library only, Python 3.11+. Prints the zip's path; exit status 1 with a message on any problem.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import json
from pathlib import Path
import re
import sys
import zipfile

# PEP 440 final releases and a/b/rc pre-releases: what HACS and Home Assistant's manifest
# validation both read as a version, and what sorts correctly in HACS's update check.
VERSION = re.compile(
    r"^(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:(?:a|b|rc)(?:0|[1-9]\d*))?$"
)
MANIFEST_VERSION = re.compile(r'^(\s*"version"\s*:\s*")[^"]*(")', re.MULTILINE)
PYPROJECT_VERSION = re.compile(r'^(version\s*=\s*")[^"]*(")', re.MULTILINE)
DUNDER_VERSION = re.compile(r'^(__version__(?:\s*:\s*str)?\s*=\s*")[^"]*(")', re.MULTILINE)
TABLE_HEADER = re.compile(r"^\[", re.MULTILINE)
# Never shipped: byte code, tool caches, editor droppings.
SKIP_PARTS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})
SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", ".orig", ".rej")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class ReleaseError(Exception):
    """The tree or the tag cannot make a release; the message says why."""


def version_from_tag(tag: str) -> str:
    """``v1.2.0`` -> ``1.2.0``; refuse anything that is not a release version."""
    version = tag.strip().removeprefix("refs/tags/").removeprefix("v")
    if not VERSION.match(version):
        raise ReleaseError(
            f"tag {tag!r} is not a release version (vMAJOR.MINOR.PATCH, optionally a/b/rc N)"
        )
    return version


def integration_dir(root: Path) -> Path:
    """The one folder under custom_components/ (HACS allows exactly one per repository)."""
    folders = sorted(
        path
        for path in (root / "custom_components").glob("*")
        if path.is_dir() and path.name not in SKIP_PARTS
    )
    if len(folders) != 1:
        raise ReleaseError(f"expected one integration under custom_components/, found {folders}")
    return folders[0]


def _substitute(text: str, pattern: re.Pattern[str], version: str, where: str) -> str:
    stamped, count = pattern.subn(lambda match: f"{match[1]}{version}{match[2]}", text, count=1)
    if count != 1:
        raise ReleaseError(f"{where}: no version to stamp")
    return stamped


def stamp_manifest(path: Path, version: str) -> None:
    text = path.read_text(encoding="utf-8")
    if "version" not in json.loads(text):
        raise ReleaseError(f"{path}: no 'version' key (HACS needs one)")
    stamped = _substitute(text, MANIFEST_VERSION, version, str(path))
    if json.loads(stamped).get("version") != version:  # the pattern hit a nested key
        raise ReleaseError(f"{path}: the top-level 'version' was not the one stamped")
    path.write_text(stamped, encoding="utf-8")


def stamp_pyproject(path: Path, version: str) -> bool:
    """Stamp ``[project] version``; False when the file has none (dynamic or no project)."""
    text = path.read_text(encoding="utf-8")
    header = re.search(r"^\[project\]\s*$", text, re.MULTILINE)
    if header is None:
        return False
    start = header.end()
    following = TABLE_HEADER.search(text, start)
    end = following.start() if following else len(text)
    table = text[start:end]
    if not PYPROJECT_VERSION.search(table):
        return False
    stamped = _substitute(table, PYPROJECT_VERSION, version, str(path))
    path.write_text(text[:start] + stamped + text[end:], encoding="utf-8")
    return True


def stamp_dunder(path: Path, version: str) -> bool:
    text = path.read_text(encoding="utf-8")
    if not DUNDER_VERSION.search(text):
        return False
    path.write_text(_substitute(text, DUNDER_VERSION, version, str(path)), encoding="utf-8")
    return True


def stamp(root: Path, version: str) -> list[Path]:
    """Write VERSION everywhere the tree declares one; return the files changed."""
    integration = integration_dir(root)
    manifest = integration / "manifest.json"
    stamp_manifest(manifest, version)
    stamped = [manifest]
    library = integration / "core"
    candidates = [root / "pyproject.toml", library / "pyproject.toml"]
    stamped += [path for path in candidates if path.is_file() and stamp_pyproject(path, version)]
    for name in ("__init__.py", "_version.py"):
        path = library / name
        if path.is_file() and stamp_dunder(path, version):
            stamped.append(path)
    return stamped


def zip_name(root: Path) -> str:
    try:
        hacs = json.loads((root / "hacs.json").read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ReleaseError("hacs.json is missing") from err
    if hacs.get("zip_release") is not True:
        raise ReleaseError("hacs.json: 'zip_release' is not true, so HACS would ignore the zip")
    name = hacs.get("filename")
    if not isinstance(name, str) or not name.endswith(".zip") or "/" in name:
        raise ReleaseError(f"hacs.json: 'filename' {name!r} is not a plain .zip file name")
    return name


def _shipped(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        shipped = not SKIP_PARTS.intersection(relative.parts)
        if path.is_file() and shipped and not path.name.endswith(SKIP_SUFFIXES):
            yield path


def build_zip(root: Path, out: Path) -> Path:
    integration = integration_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    target = out / zip_name(root)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _shipped(integration):
            info = zipfile.ZipInfo(path.relative_to(integration).as_posix(), date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("tag", help="the release tag, e.g. v1.2.0")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--out", type=Path, default=None, help="zip folder (default ROOT/dist)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        version = version_from_tag(args.tag)
        zip_name(root)  # refuse before anything is edited
        for path in stamp(root, version):
            print(f"stamped {version} into {path.relative_to(root)}", file=sys.stderr)
        print(build_zip(root, args.out or root / "dist"))
    except ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
