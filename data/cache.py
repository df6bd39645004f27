"""The persistent feature cache: one SQLite file, rows keyed by file identity and feature version.

Design
------
- **Where**: ``features.sqlite3`` in ``cache_dir``: by default ``$SPLITSAFE_CACHE`` or
  ``~/.cache/splitsafe``, never inside the dataset (only an explicit ``cache_dir`` puts it there).
- **Key**: the absolute path as bytes (``os.fsencode``, so names that are not valid UTF-8
  round-trip), the file size and ``st_mtime_ns``. A changed file has a new size or mtime, and
  its old row is replaced. The feature version and the column list name the table
  (``features_<version>_<crc of the columns>``), so a new ``FEATURE_VERSION`` never reads rows
  computed by older code; old tables are simply not read (:meth:`FeatureCache.drop_other_versions`
  removes them).
- **Durability**: WAL journal, rows written in batches, one transaction per batch. A Ctrl-C or a
  ``kill -9`` loses at most the batch in flight; SQLite's journal guarantees the file is never
  left half-written. ``synchronous=NORMAL`` is durable against a killed process (only a power
  cut can drop the last transactions, never corrupt the file).
- **Warm reads**: the wanted keys go into a temporary table and one ``JOIN`` returns the rows
  whose path, size and mtime all match: one query for 50,000 files.
- **Values**: ints, floats, strings and bytes (the caller packs arrays into bytes).
- An unreadable cache file (not a database) is moved aside to ``*.corrupt`` and a new one made;
  a cache folder that cannot be written to disables the cache with a warning, never the run.
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

CACHE_FILE_NAME = "features.sqlite3"
CACHE_ENVIRONMENT_VARIABLE = "SPLITSAFE_CACHE"


def default_cache_dir() -> Path:
    """``$SPLITSAFE_CACHE`` if set, else ``~/.cache/splitsafe``."""
    configured = os.environ.get(CACHE_ENVIRONMENT_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "splitsafe"


def path_key(path: str | bytes | os.PathLike) -> bytes:
    """The cache key of a path: its absolute form as bytes (``os.fsencode``)."""
    return os.fsencode(os.path.abspath(os.fspath(path)))


class FeatureCache:
    """Rows of feature values keyed by (absolute path, size, mtime_ns), for one version.

    Parameters
    ----------
    folder : path
        Folder of the SQLite file (created if missing).
    version : str
        Feature version; part of the table name.
    columns : sequence of str
        Names of the stored values, in a fixed order.

    Attributes
    ----------
    hits, stored : int
        Rows returned by :meth:`lookup` and rows written by :meth:`store` since opening.
    """

    def __init__(self, folder: str | os.PathLike, *, version: str, columns: Sequence[str]):
        self.folder = Path(folder)
        self.path = self.folder / CACHE_FILE_NAME
        self.columns = tuple(columns)
        signature = zlib.crc32(",".join(self.columns).encode()) & 0xFFFFFFFF
        safe_version = "".join(c if c.isalnum() else "_" for c in version)
        self.table = f"features_{safe_version}_{signature:08x}"
        self.hits = 0
        self.stored = 0
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = self._connect()
        except sqlite3.DatabaseError as error:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            warnings.warn(
                f"feature cache {self.path} is not readable ({error}); moved it to {aside} "
                "and started a new one",
                stacklevel=2,
            )
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    os.replace(source, f"{aside}{suffix}")
            self.connection = self._connect()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30.0)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            value_columns = "".join(f', "{name}"' for name in self.columns)
            with connection:
                connection.execute(
                    f'CREATE TABLE IF NOT EXISTS "{self.table}" (path BLOB PRIMARY KEY, '
                    f"size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL{value_columns})"
                )
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def lookup(self, keys: Iterable[tuple[bytes, int, int]]) -> dict[bytes, dict]:
        """Cached rows for ``(path_key, size, mtime_ns)`` triples whose size and mtime match.

        Returns
        -------
        dict
            path key -> {column: value}; keys absent from the cache (or changed) are absent.
        """
        columns = self.columns
        return {
            key: dict(zip(columns, values, strict=True))
            for key, values in self.lookup_rows(keys).items()
        }

    def lookup_rows(self, keys: Iterable[tuple[bytes, int, int]]) -> dict[bytes, tuple]:
        """As :meth:`lookup`, each row a tuple of values in :attr:`columns` order (the warm
        read of 50,000 rows then builds no dict per row)."""
        keys = list(keys)
        if not keys:
            return {}
        connection = self.connection
        connection.execute(
            "CREATE TEMP TABLE IF NOT EXISTS wanted "
            "(path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER)"
        )
        with connection:
            connection.execute("DELETE FROM wanted")
            connection.executemany("INSERT OR REPLACE INTO wanted VALUES (?, ?, ?)", keys)
        selected = ", ".join(f'c."{name}"' for name in self.columns)
        rows = connection.execute(
            f'SELECT c.path, {selected} FROM "{self.table}" AS c JOIN wanted AS w '
            "ON c.path = w.path AND c.size = w.size AND c.mtime_ns = w.mtime_ns"
        ).fetchall()
        with connection:
            connection.execute("DELETE FROM wanted")
        found = {row[0]: row[1:] for row in rows}
        self.hits += len(found)
        return found

    def store(self, rows: Iterable[tuple[tuple[bytes, int, int], dict]]) -> int:
        """Write ``((path_key, size, mtime_ns), values)`` rows in one transaction; count them."""
        records = [
            (key[0], key[1], key[2], *(values[name] for name in self.columns))
            for key, values in rows
        ]
        if not records:
            return 0
        marks = ", ".join("?" * (3 + len(self.columns)))
        with self.connection:  # one transaction: all rows of the batch or none
            self.connection.executemany(
                f'INSERT OR REPLACE INTO "{self.table}" VALUES ({marks})', records
            )
        self.stored += len(records)
        return len(records)

    def count(self) -> int:
        """Rows stored for this version."""
        return self.connection.execute(f'SELECT COUNT(*) FROM "{self.table}"').fetchone()[0]

    def drop_other_versions(self) -> list[str]:
        """Drop the tables of other feature versions; returns their names."""
        names = [
            row[0]
            for row in self.connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'features_%'"
            )
            if row[0] != self.table
        ]
        with self.connection:
            for name in names:
                self.connection.execute(f'DROP TABLE "{name}"')
        return names

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_cache(
    folder: str | os.PathLike | None, *, version: str, columns: Sequence[str]
) -> FeatureCache | None:
    """Open the cache in ``folder`` (default :func:`default_cache_dir`), or None with a warning
    when it cannot be created or written (a read-only home, a full disk)."""
    folder = Path(folder) if folder is not None else default_cache_dir()
    try:
        return FeatureCache(folder, version=version, columns=columns)
    except (OSError, sqlite3.Error) as error:
        warnings.warn(
            f"feature cache in {folder} cannot be used ({error}); computing without a cache. "
            f"Set --cache-dir or ${CACHE_ENVIRONMENT_VARIABLE} to a writable folder.",
            stacklevel=2,
        )
        return None
