"""Which code produced a result: the package version, the git commit, a dirty flag and a content
hash of the package tree, recorded in ``experiment.json`` and in every table's metadata.

On a developer's checkout the commit and dirty flag come from git. A Ray job has no git metadata
(the uploaded working directory leaves ``.git`` out), so the submitter computes them and hands
them to the job in ``DISENTUNE_CODE_VERSION`` (JSON), which every process of the job inherits. The
content hash, though, is always that of the code actually running: a job whose running package
does not hash to what was submitted (the node's installed copy shadowing the upload) refuses to
start (:func:`check_submitted`), and so does one whose node environment lacks a dependency of
the submitted code.

The tree hash is the sha256 of every file of the package (relative path and bytes, in sorted
order) except ``__pycache__`` folders and compiled files, first 12 hex digits in labels.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from disentune import __version__
from disentune.errors import UserError

ENV = "DISENTUNE_CODE_VERSION"
PACKAGE = Path(__file__).resolve().parent
_SKIPPED_DIRS = {"__pycache__"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class CodeVersion:
    """``commit`` and ``dirty`` are None where no git metadata was available."""

    version: str
    commit: str | None
    dirty: bool | None
    tree: str  # sha256 hex of the package tree

    @property
    def label(self) -> str:
        """A PEP 440 local version: ``0.1.0+g<commit 12>[.dirty].t<tree 12>``."""
        origin = "unknown" if self.commit is None else f"g{self.commit[:12]}{'.dirty' if self.dirty else ''}"
        return f"{self.version}+{origin}.t{self.tree[:12]}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def tree_hash(package: Path = PACKAGE) -> str:
    """sha256 over the package's files (relative path, then bytes), compiled files left out."""
    digest = hashlib.sha256()
    for path in sorted(_package_files(package)):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _package_files(root: Path) -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS and not d.endswith(".egg-info")]
        files += [Path(folder, n) for n in names if not n.endswith(_SKIPPED_SUFFIXES)]
    return files


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout at ``root``, or ``(None, None)`` outside one.

    Dirty means a tracked file changed or an untracked file that git does not ignore exists:
    anything the upload of that tree would carry that the commit does not hold."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        if git("rev-parse", "--show-toplevel") != str(root.resolve()):
            return None, None  # root lies inside some other repository, or none
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        return None, None


def submitted(working_dir: Path) -> CodeVersion:
    """The code version a job submitted from ``working_dir`` will run (computed by the submitter)."""
    commit, dirty = git_state(working_dir)
    return CodeVersion(__version__, commit, dirty, tree_hash(working_dir / "platform" / "disentune"))


@functools.lru_cache(maxsize=1)
def current() -> CodeVersion:
    """The version of the code running in this process (see the module docstring)."""
    tree = tree_hash()
    given = os.environ.get(ENV)
    if given:
        stated = json.loads(given)
        return CodeVersion(__version__, stated.get("commit"), stated.get("dirty"), tree)
    commit, dirty = git_state(PACKAGE.parents[1])
    return CodeVersion(__version__, commit, dirty, tree)


def stated_tree() -> str | None:
    """The tree hash a job was submitted with (None outside a submitted job)."""
    given = os.environ.get(ENV)
    return json.loads(given)["tree"] if given else None


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements (PEP 508 strings) this Python environment does not satisfy, each as
    ``name (wanted spec, found version or 'not installed')``."""
    from importlib import metadata

    from packaging.requirements import Requirement

    missing = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            found = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(f"{req.name} ({text}; not installed)")
            continue
        if req.specifier and not req.specifier.contains(found, prereleases=True):
            missing.append(f"{req.name} ({text}; found {found})")
    return missing


def project_requirements(working_dir: Path) -> list[str]:
    """``project.dependencies`` of the submitted tree's pyproject.toml (none without one)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = working_dir / "pyproject.toml"
    if not path.exists():
        return []
    return list(tomllib.loads(path.read_text(encoding="utf-8")).get("project", {}).get("dependencies", []))


def check_here(expected_tree: str, requirements: list[str], where: str) -> None:
    """Refuse (one line) code that is not the submitted tree, or an environment missing a
    dependency of it; ``where`` names this process's node in the message."""
    running = tree_hash()
    if running != expected_tree:
        raise UserError(
            f"{where}: runs disentune from {PACKAGE} (tree {running[:12]}), not the submitted code "
            f"(tree {expected_tree[:12]}); submit with `disentune submit` or the runtime env of "
            "`disentune jobs runtime-env` so the package travels with the job")
    missing = missing_requirements(requirements)
    if missing:
        raise UserError(f"{where}: the Python environment lacks {'; '.join(missing)}, needed by the submitted "
                        "code; install it on every node (cluster.yaml's setup_commands) or in the job's "
                        "runtime env (pip)")


def check_submitted() -> None:
    """In a submitted job's driver: the running code is the submitted one and its dependencies
    are installed (:func:`check_here`); a no-op outside a job."""
    expected = stated_tree()
    if expected is not None:
        check_here(expected, project_requirements(Path.cwd()), "the job's driver")
