"""The code version every run records: git commit, dirty flag and the package tree's hash."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from disentune import provenance
from disentune.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def checkout(tmp_path) -> Path:
    """A git repository holding a copy of the package, committed."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "platform" / "disentune", repo / "platform" / "disentune",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    return repo


def test_the_tree_hash_follows_the_code_and_ignores_compiled_files(checkout):
    package = checkout / "platform" / "disentune"
    before = provenance.tree_hash(package)
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"compiled")
    assert provenance.tree_hash(package) == before
    (package / "pipeline.py").write_text((package / "pipeline.py").read_text() + "# an edit\n")
    assert provenance.tree_hash(package) != before


def test_a_submitted_version_names_commit_dirty_flag_and_tree(checkout):
    clean = provenance.submitted(checkout)
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert (clean.commit, clean.dirty) == (head, False)
    assert clean.label == f"0.1.0+g{head[:12]}.t{clean.tree[:12]}"
    (checkout / "platform" / "disentune" / "new_module.py").write_text("x = 1\n")  # untracked counts
    dirty = provenance.submitted(checkout)
    assert dirty.dirty is True and dirty.tree != clean.tree and ".dirty.t" in dirty.label
    assert json.loads(dirty.to_json())["tree"] == dirty.tree
    shutil.rmtree(checkout / ".git")  # no git metadata: the tree hash still names the code
    assert provenance.submitted(checkout).label == f"0.1.0+unknown.t{dirty.tree[:12]}"


def test_a_job_refuses_other_code_and_names_a_missing_dependency():
    here = provenance.tree_hash()
    provenance.check_here(here, ["numpy>=1"], "node x")
    with pytest.raises(UserError, match=r"^node x: runs disentune from .* \(tree [0-9a-f]{12}\), not the submitted"):
        provenance.check_here("0" * 64, [], "node x")
    with pytest.raises(UserError) as missing:
        provenance.check_here(here, ["numpy>=1", "nosuchpackage>=2", "numpy<1"], "node x")
    assert str(missing.value).startswith("node x: the Python environment lacks nosuchpackage (nosuchpackage>=2; "
                                         "not installed); numpy (numpy<1; found ")
    assert provenance.missing_requirements(["nosuchpackage; python_version < '3'"]) == []  # marker excludes it
