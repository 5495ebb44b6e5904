"""The repository files around the integration: CI workflows, pre-commit, release, changelog.

They are only exercised on GitHub, so a renamed script, a moved requirements file or a drifted
pin would otherwise surface as a red CI run after the merge. These tests read the files as
GitHub and pre-commit do and check what they point at exists and agrees with the tree; the
release script is run on a copy of the tree.
"""

from collections.abc import Iterator
import importlib.util
import json
import os
from pathlib import Path
import re
import shlex
import shutil
import subprocess
import sys
from types import ModuleType
from typing import Any
import zipfile

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
PRE_COMMIT = REPO / ".pre-commit-config.yaml"
RELEASE_SCRIPT = REPO / ".github" / "scripts" / "build_release.py"
INTEGRATION = REPO / "custom_components" / "pylontech"

# Repository files a workflow or a hook can name: scripts, requirements, the integration's
# metadata. Anything matching must exist.
REFERENCE = re.compile(
    r"(?<![\w/.-])(?:\./)?("
    r"(?:\.github/scripts|scripts|\.ci)/[\w.-]+"
    r"|requirements_\w+\.txt"
    r"|custom_components/pylontech/[\w./-]+\.(?:json|yaml)"
    r"|tests/[\w./-]+\.py"
    r")"
)


SCRIPT = re.compile(r"(?:\./)?(?:\.github/scripts|scripts|\.ci)/[\w.-]+")


def _workflows() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _steps(workflow: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def _job_matrix(workflow: dict[Any, Any], job_id: str) -> list[dict[str, Any]]:
    include = workflow["jobs"][job_id]["strategy"]["matrix"]["include"]
    assert isinstance(include, list)
    return include


def _tests_matrix() -> list[dict[str, Any]]:
    return _job_matrix(_load(WORKFLOWS / "tests.yml"), "tests")


def _pinned(requirements: str, package: str) -> str:
    text = (REPO / requirements).read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(package)}==(\S+)\s*$", text, re.MULTILINE | re.IGNORECASE)
    assert found, f"{requirements} does not pin {package}"
    return found[1]


# ---- workflows --------------------------------------------------------------------------------
def test_there_are_the_workflows_a_hacs_repository_has() -> None:
    uses = {
        step["uses"].split("@", 1)[0]
        for path in _workflows()
        for _, step in _steps(_load(path))
        if "uses" in step
    }
    assert {"home-assistant/actions/hassfest", "hacs/action"} <= uses
    hacs_steps = [
        step
        for path in _workflows()
        for _, step in _steps(_load(path))
        if step.get("uses", "").startswith("hacs/action@")
    ]
    assert [step["with"]["category"] for step in hacs_steps] == ["integration"]
    # HACS's default list accepts only runs with no check switched off.
    assert all("ignore" not in step["with"] for step in hacs_steps)


@pytest.mark.parametrize("path", _workflows(), ids=lambda path: path.name)
def test_workflow_is_well_formed(path: Path) -> None:
    workflow = _load(path)
    # YAML 1.1 reads the bare key `on` as True, as PyYAML does; GitHub reads it as "on".
    triggers = workflow.get("on", workflow.get(True))
    assert triggers, f"{path.name}: no triggers"
    assert workflow.get("jobs"), f"{path.name}: no jobs"
    for job_id, job in workflow["jobs"].items():
        assert "runs-on" in job, f"{path.name}: job {job_id} has no runs-on"
        assert job.get("steps"), f"{path.name}: job {job_id} has no steps"
    for job_id, step in _steps(workflow):
        assert ("uses" in step) != ("run" in step), f"{path.name}/{job_id}: {step}"
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert ref, f"{path.name}/{job_id}: {action} is not pinned to a version"


@pytest.mark.parametrize("path", [*_workflows(), PRE_COMMIT], ids=lambda path: path.name)
def test_files_the_workflows_and_hooks_name_exist(path: Path) -> None:
    named = {match for text in _strings(_load(path)) for match in REFERENCE.findall(text)}
    missing = sorted(name for name in named if not (REPO / name).exists())
    assert not missing, f"{path.name} names files that do not exist: {missing}"


def _commands(path: Path) -> Iterator[str]:
    """The shell commands a workflow (steps, matrix entries) or a pre-commit hook runs."""
    data = _load(path)
    if path == PRE_COMMIT:
        texts = [
            hook["entry"] for repo in data["repos"] for hook in repo["hooks"] if "entry" in hook
        ]
    else:
        texts = [step["run"] for _, step in _steps(data) if "run" in step]
        for job in data["jobs"].values():
            include = job.get("strategy", {}).get("matrix", {}).get("include", [])
            texts += [entry["run"] for entry in include if "run" in entry]
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                yield line.strip()


@pytest.mark.parametrize("path", [*_workflows(), PRE_COMMIT], ids=lambda path: path.name)
def test_scripts_run_directly_are_executable(path: Path) -> None:
    """`run: scripts/x` needs the executable bit and a shebang in the checkout."""
    for command in _commands(path):
        try:
            first = shlex.split(command)[0]
        except ValueError:  # a line inside a quoted multi-line argument
            continue
        if SCRIPT.fullmatch(first):
            script = REPO / first.removeprefix("./")
            assert script.is_file(), f"{path.name}: {first} does not exist"
            assert os.access(script, os.X_OK), f"{path.name}: {first} is not executable"
            assert script.read_bytes().startswith(b"#!"), f"{path.name}: {first} has no shebang"


def test_every_run_in_the_test_matrix_names_an_existing_script() -> None:
    for entry in _tests_matrix():
        first = shlex.split(entry["run"])[0]
        assert (REPO / first).is_file(), entry
        assert (REPO / entry["requirements"]).is_file(), entry


def test_matrix_runs_phacc_on_the_oldest_release_and_end_to_end_on_the_current() -> None:
    matrix = {entry["venv"]: entry for entry in _tests_matrix()}
    assert set(matrix) == {"test", "ha"}
    assert shlex.split(matrix["test"]["run"])[0] == "scripts/test"
    assert shlex.split(matrix["ha"]["run"])[0] == "scripts/smoke"
    assert matrix["ha"]["homeassistant"] == _pinned("requirements_ha.txt", "homeassistant")


def test_the_pytest_job_is_named_after_the_home_assistant_this_environment_runs() -> None:
    """The test venv is the one scripts/setup builds from requirements_test.txt (PHACC's pin)."""
    const = pytest.importorskip("homeassistant.const")
    matrix = {entry["venv"]: entry for entry in _tests_matrix()}
    assert matrix["test"]["homeassistant"] == const.__version__


def test_hacs_minimum_is_not_newer_than_the_oldest_tested_release() -> None:
    hacs = json.loads((REPO / "hacs.json").read_text(encoding="utf-8"))
    oldest = min(
        tuple(int(part) for part in entry["homeassistant"].split(".")) for entry in _tests_matrix()
    )
    minimum = tuple(int(part) for part in hacs["homeassistant"].split("."))
    assert minimum <= oldest


def test_the_release_workflow_runs_the_release_script_on_the_tag() -> None:
    workflow = _load(WORKFLOWS / "release.yml")
    assert workflow.get("on", workflow.get(True)) == {"release": {"types": ["published"]}}
    runs = "\n".join(step.get("run", "") for _, step in _steps(workflow))
    assert ".github/scripts/build_release.py" in runs
    assert "gh release upload" in runs
    # The tag reaches the shell through env, never pasted into the script (injection).
    assert "${{" not in runs
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write"}


# ---- pre-commit -------------------------------------------------------------------------------
def test_pre_commit_ruff_is_the_release_requirements_test_pins() -> None:
    config = _load(PRE_COMMIT)
    (ruff,) = [repo for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit")]
    assert ruff["rev"] == f"v{_pinned('requirements_test.txt', 'ruff')}"
    assert {hook["id"] for hook in ruff["hooks"]} == {"ruff-check", "ruff-format"}


def test_pre_commit_leaves_the_captures_byte_for_byte() -> None:
    """Fixers (trailing whitespace, end of file, line endings) must never touch a capture."""
    exclude = re.compile(_load(PRE_COMMIT)["exclude"])
    captures = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "tests" / "core" / "captures").rglob("*")
        if path.is_file()
    ]
    assert captures
    assert all(exclude.search(name) for name in captures)
    assert not exclude.search("custom_components/pylontech/manifest.json")


# ---- CHANGELOG ----------------------------------------------------------------------------------
def test_changelog_has_unreleased_and_the_manifest_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert sections[0] == "Unreleased"
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] in sections


# ---- CONTRIBUTING -------------------------------------------------------------------------------
def test_paths_contributing_names_exist() -> None:
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    named = set(
        re.findall(
            r"(?<![\w/.-])((?:custom_components|scripts|tests|simulator|dev|docs|\.github)"
            r"/[\w./{},*<>-]*[\w/}*>])",
            text,
        )
    )
    # Patterns (`tests/core/test_*_properties.py`, `{can,rs485,console}`) name families.
    concrete = {name for name in named if not re.search(r"[<>*{}]", name)}
    assert len(concrete) > 10
    missing = sorted(name for name in concrete if not (REPO / name).exists())
    assert not missing, f"CONTRIBUTING.md names paths that do not exist: {missing}"


# ---- release script -----------------------------------------------------------------------------
def _release_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_release", RELEASE_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_release", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the release script reads, with byte code lying around as in a checkout."""
    root = tmp_path / "repo"
    shutil.copytree(
        INTEGRATION,
        root / "custom_components" / "pylontech",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("hacs.json", "pyproject.toml"):
        shutil.copy2(REPO / name, root / name)
    cache = root / "custom_components" / "pylontech" / "__pycache__"
    cache.mkdir()
    (cache / "const.cpython-314.pyc").write_bytes(b"\0")
    return root


def _release(root: Path, tag: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE_SCRIPT), tag, "--root", str(root), "--out", "dist"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )


def test_release_stamps_the_tag_and_zips_what_hacs_installs(tree: Path) -> None:
    manifest_before = (tree / "custom_components/pylontech/manifest.json").read_text()
    result = _release(tree, "v1.4.0")
    assert result.returncode == 0, result.stderr

    hacs = json.loads((tree / "hacs.json").read_text(encoding="utf-8"))
    assert hacs["zip_release"] is True
    archive_path = tree / "dist" / hacs["filename"]
    assert tree / result.stdout.strip() == archive_path  # printed relative to --out

    manifest_after = (tree / "custom_components/pylontech/manifest.json").read_text()
    assert json.loads(manifest_after)["version"] == "1.4.0"
    # Only the version string changed: key order and layout stay as hassfest checked them.
    old_version = json.loads(manifest_before)["version"]
    assert manifest_after == manifest_before.replace(
        f'"version": "{old_version}"', '"version": "1.4.0"'
    )
    assert 'version = "1.4.0"' in (tree / "pyproject.toml").read_text(encoding="utf-8")

    with zipfile.ZipFile(archive_path) as archive:
        names = set(archive.namelist())
        # HACS unpacks the zip into custom_components/pylontech/: files at the root.
        assert json.loads(archive.read("manifest.json"))["version"] == "1.4.0"
    shipped = {
        path.relative_to(tree / "custom_components/pylontech").as_posix()
        for path in (tree / "custom_components/pylontech").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert names == shipped
    assert {"__init__.py", "strings.json", "translations/de.json", "brand/icon.png"} <= names
    assert "core/model.py" in names


def test_release_zip_is_reproducible(tree: Path) -> None:
    assert _release(tree, "v1.4.0").returncode == 0
    first = (tree / "dist" / "pylontech.zip").read_bytes()
    os.utime(tree / "custom_components/pylontech/const.py", (0, 0))
    assert _release(tree, "v1.4.0").returncode == 0
    assert (tree / "dist" / "pylontech.zip").read_bytes() == first


def test_release_stamps_the_library_version_where_it_declares_one(tree: Path) -> None:
    library = tree / "custom_components" / "pylontech" / "core"
    (library / "pyproject.toml").write_text(
        '[project]\nname = "aiopylontech"\nversion = "0.0.0"\n\n'
        '[tool.example]\nversion = "not a project version"\n',
        encoding="utf-8",
    )
    init = library / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + '\n__version__ = "0.0.0"\n', "utf-8")

    assert _release(tree, "2.0.0rc1").returncode == 0

    pyproject = (library / "pyproject.toml").read_text(encoding="utf-8")
    assert 'version = "2.0.0rc1"' in pyproject
    assert 'version = "not a project version"' in pyproject
    assert '__version__ = "2.0.0rc1"' in init.read_text(encoding="utf-8")


@pytest.mark.parametrize("tag", ["latest", "v1.2", "1.2.3.4", "v01.2.3", "1.2.3-beta", ""])
def test_release_refuses_a_tag_that_is_not_a_version(tree: Path, tag: str) -> None:
    manifest = (tree / "custom_components/pylontech/manifest.json").read_bytes()
    result = _release(tree, tag)
    assert result.returncode == 1
    assert "not a release version" in result.stderr
    assert (tree / "custom_components/pylontech/manifest.json").read_bytes() == manifest
    assert not (tree / "dist").exists()


def test_release_refuses_when_hacs_would_not_install_the_zip(tree: Path) -> None:
    (tree / "hacs.json").write_text(json.dumps({"name": "Pylontech"}), encoding="utf-8")
    manifest = (tree / "custom_components/pylontech/manifest.json").read_bytes()
    result = _release(tree, "v1.0.0")
    assert result.returncode == 1
    assert "zip_release" in result.stderr
    # Refused before anything was edited.
    assert (tree / "custom_components/pylontech/manifest.json").read_bytes() == manifest


def test_release_version_rule_matches_what_hacs_and_pep_440_read() -> None:
    module = _release_module()
    assert module.version_from_tag("v0.1.0") == "0.1.0"
    assert module.version_from_tag("refs/tags/v3.0.0b2") == "3.0.0b2"
    assert module.version_from_tag(" v1.2.3\n") == "1.2.3"  # pasted with blanks around
    with pytest.raises(module.ReleaseError):
        module.version_from_tag("v1.0.0-rc.1")
