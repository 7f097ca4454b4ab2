"""The files behind a dataset path (a local path or ``s3://``): listing, content hashes, staging.

- :func:`list_source` lists a file, or a folder's files recursively (sorted by relative name;
  hidden files and folders, named ``.*``, are skipped), each with its size and version
  (``mtime_ns`` locally, the ETag on S3). A path that does not exist is one line.
- The content hash of a file is the sha256 of its bytes, streamed. :func:`known_hash` remembers
  ``(uri, size, version) -> sha256`` under ``imported/hashes/`` so a second run neither rehashes a
  local file nor downloads a remote one to find its entry.
- :func:`staged` gives local paths for reading: local files as they are (hashed in place once),
  ``s3://`` files streamed through :func:`disentune.storage.filesystem` into
  ``imported/staging/`` (hashed while they download) and deleted when the conversion is done.
- :func:`content_hash` of several files is the sha256 of their ``name<TAB>sha256`` lines, so it
  does not depend on where the folder lives; of one file it is that file's own sha256.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from tqdm import tqdm

from disentune import storage
from disentune.data.cache import imported_dir, write_json_atomic
from disentune.errors import UserError

BLOCK = 8 * 2**20
_PROGRESS_MIN_BYTES = 256 * 2**20


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset: its URI, its name relative to the dataset path, size and version."""

    uri: str
    name: str
    size: int
    version: str

    @property
    def remote(self) -> bool:
        return storage.is_remote(self.uri)


def _listing_error(uri: str, err: BaseException) -> UserError:
    if isinstance(err, FileNotFoundError):
        bucket = uri.removeprefix("s3://").split("/", 1)[0]
        if uri.startswith("s3://") and not storage.exists(f"s3://{bucket}"):
            return UserError(f"{uri}: the bucket {bucket} does not exist")
        return UserError(f"{uri}: no such file or folder")
    return storage.storage_error(uri, err)


def list_source(uri: str, *, folder: bool | None, accept: Callable[[str], bool]) -> list[SourceFile]:
    """The file at ``uri``, or the files of the folder at ``uri`` whose relative names ``accept``
    allows.

    ``folder`` True requires a folder, False a file, None takes either.
    """
    uri = storage.normalize(uri)
    fs, path = storage.filesystem(uri)
    prefix = "s3://" if uri.startswith("s3://") else ""
    try:
        info = fs.info(path)
        is_dir = info.get("type") == "directory"
        if folder is True and not is_dir:
            raise UserError(f"{uri}: is a file; give the folder that holds the dataset's files")
        if folder is False and is_dir:
            raise UserError(f"{uri}: is a folder; give the dataset's file")
        found = fs.find(path, detail=True) if is_dir else {path: info}
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - every storage failure is one line
        raise _listing_error(uri, err) from None
    files = []
    for full, meta in sorted(found.items()):
        name = full[len(path):].lstrip("/") if is_dir else full.rsplit("/", 1)[-1]
        hidden = any(part.startswith(".") for part in name.split("/"))
        if meta.get("type") == "directory" or (is_dir and (hidden or not accept(name))):
            continue
        version = str(meta.get("ETag") or meta.get("mtime") or meta.get("LastModified") or "")
        if not prefix:
            version = str(Path(full).stat().st_mtime_ns)
        files.append(SourceFile(prefix + full, name, int(meta.get("size") or 0), version.strip('"')))
    return files


def _memo_path(file: SourceFile) -> Path:
    key = json.dumps([file.uri, file.size, file.version])
    return imported_dir() / "hashes" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def known_hash(file: SourceFile) -> str | None:
    """The remembered sha256 of ``file`` (same uri, size and version), or None."""
    try:
        doc = json.loads(_memo_path(file).read_text())
    except (OSError, ValueError):
        return None
    same = [doc.get("uri"), doc.get("size"), doc.get("version")] == [file.uri, file.size, file.version]
    return doc.get("sha256") if same else None


def remember_hash(file: SourceFile, sha256: str) -> None:
    write_json_atomic(_memo_path(file), {"uri": file.uri, "size": file.size,
                                         "version": file.version, "sha256": sha256})


def content_hash(names_and_hashes: list[tuple[str, str]]) -> str:
    if len(names_and_hashes) == 1:
        return names_and_hashes[0][1]
    lines = "".join(f"{name}\t{sha}\n" for name, sha in sorted(names_and_hashes))
    return hashlib.sha256(lines.encode()).hexdigest()


def _progress(total: int, desc: str) -> tqdm:
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr,
                disable=total < _PROGRESS_MIN_BYTES or not sys.stderr.isatty())


def _copy_hashing(src: IO[bytes], dst: IO[bytes] | None, bar: tqdm) -> str:
    digest = hashlib.sha256()
    while block := src.read(BLOCK):
        digest.update(block)
        if dst is not None:
            dst.write(block)
        bar.update(len(block))
    return digest.hexdigest()


def _download(file: SourceFile, dest: Path) -> str:
    fs, path = storage.filesystem(file.uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with fs.open(path, "rb", block_size=BLOCK) as src, open(dest, "wb") as dst, \
                _progress(file.size, f"fetching {file.name}") as bar:
            return _copy_hashing(src, dst, bar)
    except FileNotFoundError:
        raise UserError(f"{file.uri}: no such file") from None
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise UserError(f"{dest.parent}: no space left to stage {file.uri}") from None
        raise storage.storage_error(file.uri, err) from None
    except Exception as err:  # noqa: BLE001 - botocore errors are not OSErrors
        raise storage.storage_error(file.uri, err) from None


def hash_local(file: SourceFile) -> str:
    """The sha256 of a local file (remembered)."""
    if (known := known_hash(file)) is not None:
        return known
    try:
        with open(file.uri, "rb") as src, _progress(file.size, f"hashing {file.name}") as bar:
            sha = _copy_hashing(src, None, bar)
    except OSError as err:
        raise UserError(f"{file.uri}: cannot read ({type(err).__name__}: {err.strerror or err})") from None
    remember_hash(file, sha)
    return sha


@contextlib.contextmanager
def staged(files: list[SourceFile]) -> Iterator[tuple[list[Path], str]]:
    """Local paths of ``files`` (downloading remote ones) and their :func:`content_hash`."""
    staging = imported_dir() / "staging" / uuid.uuid4().hex
    try:
        paths, hashes = [], []
        for file in files:
            if file.remote:
                local = staging / file.name
                sha = _download(file, local)
                remember_hash(file, sha)
            else:
                local, sha = Path(file.uri), hash_local(file)
            paths.append(local)
            hashes.append((file.name, sha))
        yield paths, content_hash(hashes)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _listing(files: list[SourceFile]) -> SourceFile:
    """A stand-in file for a whole listing, so a folder's hash is one memo, not one per file."""
    versions = json.dumps([(f.name, f.size, f.version) for f in files])
    return SourceFile(files[0].uri.rsplit("/", 1)[0] + "/", "", sum(f.size for f in files),
                      hashlib.sha256(versions.encode()).hexdigest())


def remembered_content_hash(files: list[SourceFile]) -> str | None:
    """The content hash from remembered hashes alone (of the listing, else of every file), or None."""
    if len(files) > 1 and (known := known_hash(_listing(files))) is not None:
        return known
    hashes = [(f.name, known_hash(f)) for f in files]
    if any(sha is None for _, sha in hashes):
        return None
    return content_hash(hashes)  # type: ignore[arg-type]


def remember_content_hash(files: list[SourceFile], sha256: str) -> None:
    """Remember a folder's content hash under its listing (one file's is remembered already)."""
    if len(files) > 1:
        remember_hash(_listing(files), sha256)
