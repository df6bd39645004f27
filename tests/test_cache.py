"""The feature cache: keys, versions, batches, a corrupt file, and a run killed with SIGKILL."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.cache import CACHE_FILE_NAME, FeatureCache, default_cache_dir, path_key

COLUMNS = ("phash", "format", "descriptor")
REPOSITORY = Path(__file__).resolve().parents[1]


def row(value):
    return {"phash": value, "format": "PNG", "descriptor": np.arange(4, dtype=np.float16).tobytes()}


def test_lookup_matches_path_size_and_mtime(tmp_path):
    with FeatureCache(tmp_path, version="1", columns=COLUMNS) as cache:
        cache.store([((b"/a", 10, 100), row(1)), ((b"/b", 20, 200), row(2))])
        found = cache.lookup([(b"/a", 10, 100), (b"/b", 21, 200), (b"/c", 1, 1)])
        assert set(found) == {b"/a"} and found[b"/a"]["phash"] == 1
        assert found[b"/a"]["descriptor"] == row(1)["descriptor"]
        assert cache.lookup([(b"/b", 20, 201)]) == {}  # changed mtime
        cache.store([((b"/b", 21, 200), row(3))])  # the file changed: its row is replaced
        assert cache.lookup([(b"/b", 21, 200)])[b"/b"]["phash"] == 3
        assert cache.count() == 2 and cache.hits == 2


def test_versions_do_not_share_rows(tmp_path):
    with FeatureCache(tmp_path, version="1", columns=COLUMNS) as cache:
        cache.store([((b"/a", 1, 1), row(1))])
    with FeatureCache(tmp_path, version="2", columns=COLUMNS) as cache:
        assert cache.lookup([(b"/a", 1, 1)]) == {}
        assert len(cache.drop_other_versions()) == 1
    with FeatureCache(tmp_path, version="1", columns=("phash", "format")) as cache:
        assert cache.lookup([(b"/a", 1, 1)]) == {}  # other columns: other table


def test_non_utf8_path_keys_round_trip(tmp_path):
    name = os.fsdecode(b"caf\xe9 image.png")
    key = path_key(tmp_path / name)
    assert key.endswith(b"caf\xe9 image.png")
    with FeatureCache(tmp_path, version="1", columns=COLUMNS) as cache:
        cache.store([((key, 1, 1), row(7))])
        assert cache.lookup([(key, 1, 1)])[key]["phash"] == 7


def test_corrupt_cache_file_is_moved_aside(tmp_path):
    (tmp_path / CACHE_FILE_NAME).write_bytes(b"this is not a database" * 100)
    with (
        pytest.warns(UserWarning, match="not readable"),
        FeatureCache(tmp_path, version="1", columns=COLUMNS) as cache,
    ):
        cache.store([((b"/a", 1, 1), row(1))])
        assert cache.count() == 1
    assert any(p.name.startswith(f"{CACHE_FILE_NAME}.corrupt-") for p in tmp_path.iterdir())


def test_default_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SPLITSAFE_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("SPLITSAFE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "splitsafe"


def test_run_killed_with_sigkill_keeps_committed_rows_and_a_valid_cache(tmp_path):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    for index in range(40):
        path = root / "cat" / f"{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 24), (index * 6, 100, 200 - index * 4)).save(path)
    script = textwrap.dedent(
        f"""
        import time, data, data.image_features as f
        original = f.analyse_file
        def slow(path, **options):
            time.sleep(0.1)
            return original(path, **options)
        f.analyse_file = slow
        f.COMMIT_EVERY_ROWS = 4
        data.features(data.scan({str(root)!r}), {str(root)!r}, cache_dir={str(cache_dir)!r},
                      workers=1, progress=False)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPOSITORY)
    database = cache_dir / CACHE_FILE_NAME
    stored = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and stored < 8:
        time.sleep(0.2)
        if database.exists():
            try:
                with sqlite3.connect(database) as connection:
                    tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master")]
                    stored = sum(
                        connection.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
                        for t in tables
                        if t.startswith("features_")
                    )
            except sqlite3.OperationalError:
                pass
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 8 <= stored < 40, "the run finished or stored nothing before the kill"

    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    import data

    rerun = data.features(data.scan(root), root, cache_dir=cache_dir, workers=1, progress=False)
    counts = rerun.attrs["feature_counts"]
    assert counts["cached"] >= stored and counts["cached"] + counts["computed"] == 40
    assert counts["errors"] == 0
    fresh = data.features(data.scan(root), root, workers=1, progress=False, use_cache=False)
    assert rerun["pixel_digest"].tolist() == fresh["pixel_digest"].tolist()
