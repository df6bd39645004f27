"""Audit settings: defaults < pyproject [tool.splitsafe] < dataset splitsafe.toml < command line."""

from __future__ import annotations

import pytest

from data.settings import AuditConfig, load_audit_config


def write_pyproject(folder, body: str):
    path = folder / "pyproject.toml"
    path.write_text("[project]\nname = 'x'\n\n[tool.splitsafe]\n" + body)
    return path


def test_defaults_without_any_file(tmp_path):
    config = load_audit_config(pyproject=tmp_path / "missing.toml", dataset_root=tmp_path)
    assert config == AuditConfig()


def test_each_level_overrides_the_one_before(tmp_path):
    pyproject = write_pyproject(
        tmp_path,
        "near_duplicate_similarity = 0.95\nbalance_max_ratio = 4.0\nseed = 3\n",
    )
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "splitsafe.toml").write_text("balance_max_ratio = 5.0\nseed = 4\n")
    config = load_audit_config(pyproject=pyproject, dataset_root=dataset, overrides={"seed": "7"})
    assert config.near_duplicate_similarity == 0.95  # pyproject over the default
    assert config.balance_max_ratio == 5.0  # splitsafe.toml over pyproject
    assert config.seed == 7  # command line (a string, coerced to int) over splitsafe.toml


def test_command_line_values_are_coerced_to_the_default_type(tmp_path):
    config = load_audit_config(
        overrides={
            "fail_on_duplicates_within_split": "true",
            "quality_fail_on": "dark, blurry",
            "near_duplicate_similarity": "0.8",
        }
    )
    assert config.fail_on_duplicates_within_split is True
    assert config.quality_fail_on == ("dark", "blurry")
    assert config.near_duplicate_similarity == 0.8


def test_split_pairs_from_toml_become_tuples(tmp_path):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "splitsafe.toml").write_text('split_pairs = [["valid", "train"]]\n')
    config = load_audit_config(dataset_root=dataset)
    assert config.split_pairs == (("valid", "train"),)


@pytest.mark.parametrize(
    ("where", "body", "message"),
    [
        ("pyproject", "near_duplicate_similaritee = 0.9\n", "[tool.splitsafe]: unknown splitsafe"),
        (
            "dataset",
            "seed = 1\nbogus = 2\n",
            "splitsafe.toml: unknown splitsafe setting(s) ['bogus']",
        ),
        ("dataset", "seed = [\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_source(tmp_path, where, body, message):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    if where == "pyproject":
        pyproject = write_pyproject(tmp_path, body)
    else:
        pyproject = None
        (dataset / "splitsafe.toml").write_text(body)
    with pytest.raises(ValueError) as error:
        load_audit_config(pyproject=pyproject, dataset_root=dataset)
    assert message in str(error.value)


def test_bad_command_line_value_names_the_setting():
    with pytest.raises(ValueError) as error:
        load_audit_config(overrides={"balance_max_ratio": "lots"})
    assert "'balance_max_ratio'='lots'; expected a float" in str(error.value)


def test_derived_dataset_keeps_its_source_thresholds(tmp_path):
    from data.settings import copy_dataset_config

    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir()
    (source / "splitsafe.toml").write_text("balance_max_ratio = 5.0\n")
    assert copy_dataset_config(source, out) == out / "splitsafe.toml"
    assert load_audit_config(dataset_root=out).balance_max_ratio == 5.0
    (out / "splitsafe.toml").write_text("balance_max_ratio = 2.0\n")
    assert copy_dataset_config(source, out) is None  # the derived dataset's own file is kept
    assert load_audit_config(dataset_root=out).balance_max_ratio == 2.0
    assert copy_dataset_config(tmp_path / "none", tmp_path / "out2") is None
