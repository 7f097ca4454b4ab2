"""The run's Parquet tables at a URI, on top of :mod:`disentune.storage`.

- Every file carries the version of the code that wrote it (``disentune.code`` in its metadata).
- Tables written by several processes are *datasets*: a folder of ``part-<name>.parquet`` files,
  one per write, so writers never rewrite each other's rows; :func:`read_dataset` reads the whole
  folder as one table. Every part carries the schema version and is checked on read.
- Every write is atomic (:func:`disentune.storage.atomic_write`: the table is serialised in memory,
  then renamed into place locally or sent as one S3 PUT), so a reader, during an S3 outage or after
  a full disk, sees the previous table or the new one, never a truncated one; a table that does
  not parse is refused in one line, never read in part. S3 requests retry transient failures for
  ``DISENTUNE_STORAGE_RETRY_S`` seconds (default 90; see :mod:`disentune.storage`).
"""

from __future__ import annotations

import hashlib
import io
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from disentune.errors import UserError
from disentune.reports.schema import check_version
from disentune.storage import atomic_write, filesystem, join, read_bytes, storage_error


CODE_KEY = b"disentune.code"


def write_table(table: pa.Table, uri: str) -> None:
    """Write atomically, with the writing code's version (commit, dirty flag, tree hash; see
    :mod:`disentune.provenance`) in the file's metadata, so every table says what made it."""
    from disentune.provenance import current

    table = table.replace_schema_metadata({**(table.schema.metadata or {}), CODE_KEY: current().to_json().encode()})
    atomic_write(uri, lambda f: pq.write_table(table, f))


def _parse(data: bytes, uri: str) -> pa.Table:
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as err:
        raise UserError(f"{uri}: not a readable Parquet file ({str(err).splitlines()[0]})") from None
    check_version(table.schema, uri)
    return table


def read_table(uri: str) -> pa.Table:
    """Read one table, refusing files that are not Parquet or come from a newer schema."""
    try:
        data = read_bytes(uri)
    except UserError as err:
        raise UserError(str(err).replace("no such file", "no such table")) from None
    return _parse(data, uri)


def append_table(table: pa.Table, dataset_uri: str, key: str | None = None) -> str:
    """Add ``table`` to a dataset folder as a new part; returns the part's URI.

    With ``key`` the part's name is derived from it, so writing the same key again replaces that
    part instead of adding rows: a re-run of the same unit of work is idempotent by construction.
    """
    name = hashlib.sha256(key.encode()).hexdigest()[:32] if key is not None else uuid.uuid4().hex
    part = join(dataset_uri, f"part-{name}.parquet")
    write_table(table, part)
    return part


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order; a column an older writer did not have is
    null (schema versions only ever add columns)."""
    columns = [table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def read_dataset(dataset_uri: str, schema: pa.Schema) -> pa.Table:
    """All parts of a dataset folder as one table (empty if the folder does not exist yet)."""
    fs, path = filesystem(dataset_uri)
    try:
        names = sorted(p for p in fs.find(path) if p.rsplit("/", 1)[-1].startswith("part-")
                       and p.endswith(".parquet"))
    except FileNotFoundError:
        names = []
    except Exception as err:  # noqa: BLE001
        raise storage_error(dataset_uri, err) from None
    tables = []
    for name in names:
        where = join(dataset_uri, name.rsplit("/", 1)[-1])
        try:
            data = fs.cat_file(name)
        except FileNotFoundError:  # replaced by a re-run between the listing and the read
            continue
        except Exception as err:  # noqa: BLE001
            raise storage_error(where, err) from None
        tables.append(conform(_parse(data, where), schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()
