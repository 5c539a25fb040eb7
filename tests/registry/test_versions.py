"""The registry's one check of a version, at register, promote and load, and where a worker falls back to."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mlflow import MlflowClient

import registry
from core.settings import Settings
from registry.errors import ModelUnusableError, RegistryUnreachableError
from schemas.features import feature_names
from tests.support.cli import run_momoguard
from tests.support.models import register_model, train_booster
from tests.support.registry_faults import BAD_VERSIONS, spoil

PRE = feature_names("pre_settlement")


@pytest.mark.parametrize(
    ("threshold", "feature_set", "names", "says"),
    [
        ("nan", "pre_settlement", PRE, "threshold 'nan' is not a finite number in (0, 1]"),
        ("-1", "pre_settlement", PRE, "threshold '-1' is not a finite number in (0, 1]"),
        ("0", "pre_settlement", PRE, "threshold '0' is not a finite number in (0, 1]"),
        ("1.5", "pre_settlement", PRE, "threshold '1.5' is not a finite number in (0, 1]"),
        ("inf", "pre_settlement", PRE, "threshold 'inf' is not a finite number in (0, 1]"),
        ("abc", "pre_settlement", PRE, "threshold 'abc' is not a number"),
        (None, "pre_settlement", PRE, "no threshold"),
        ("0.5", "mystery_settlement", PRE, "unknown feature set 'mystery_settlement'"),
        ("0.5", None, PRE, "unknown feature set None"),
        ("0.5", "post_settlement", PRE, "16 features are not the 21 of 'post_settlement' (columns missing or extra)"),
        ("0.5", "pre_settlement", [PRE[1], PRE[0], *PRE[2:]], "column 0 is 'type_cash_out', not 'type_cash_in'"),
    ],
)
def test_check_version_says_what_is_wrong(
    threshold: str | None, feature_set: str | None, names: list[str], says: str
) -> None:
    with pytest.raises(ModelUnusableError) as error:
        registry.check_version("m version 9", threshold, feature_set, names)
    assert str(error.value).startswith("m version 9: ") and says in str(error.value)
    assert "\n" not in str(error.value)


def test_a_review_threshold_must_be_a_number_below_the_block_threshold() -> None:
    assert registry.check_review_threshold("m", None, 0.5) is None
    assert registry.check_review_threshold("m", "", 0.5) is None, "an empty tag: no review threshold"
    assert registry.check_review_threshold("m", "0.125", 0.5) == 0.125
    for bad, says in (("0.5", "not below the block threshold"), ("nan", "not a finite"), (0, "not a finite"),
                      ("often", "not a number")):  # fmt: skip
        with pytest.raises(ModelUnusableError, match=says):
            registry.check_review_threshold("m version 9", bad, 0.5)
        with pytest.raises(ModelUnusableError, match=says):
            registry.check_version("m version 9", 0.5, "pre_settlement", PRE, review_threshold=bad)


@pytest.mark.parametrize("threshold", ["1", "0.5", 1e-9, 0.173])
def test_check_version_passes_a_good_version(threshold: str | float) -> None:
    assert registry.check_version("m", threshold, "pre_settlement", PRE) == (float(threshold), "pre_settlement")


def local_registry(folder: Path) -> Settings:
    """A fresh SQLite registry whose artifacts live under `folder` (so a test can spoil a model file)."""
    return Settings(run_dir=folder, mlflow_tracking_uri="")


@pytest.fixture(scope="module")
def spoiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, str]]:
    """A good champion (version 1), then one candidate spoiled in each way: kind -> version."""
    folder = tmp_path_factory.mktemp("spoiled")
    settings = local_registry(folder)
    register_model(settings, rounds=20, threshold=0.5, tmp=folder)
    versions = {}
    for kind in BAD_VERSIONS:
        versions[kind] = register_model(settings, rounds=20, threshold=0.5, tmp=folder, champion=False)
        spoil(settings, versions[kind], kind)
    return settings, versions


@pytest.mark.parametrize("kind", BAD_VERSIONS)
def test_loading_a_spoiled_version_says_it_is_unusable_and_why(
    spoiled: tuple[Settings, dict[str, str]], kind: str
) -> None:
    settings, versions = spoiled
    with pytest.raises(ModelUnusableError) as error:
        registry.load_version(settings, versions[kind])
    assert not isinstance(error.value, RegistryUnreachableError)
    assert str(error.value).startswith(f"{settings.model_name} version {versions[kind]}: ")
    assert BAD_VERSIONS[kind] in str(error.value)


@pytest.mark.parametrize("kind", BAD_VERSIONS)
def test_promote_refuses_a_spoiled_version_with_one_line(spoiled: tuple[Settings, dict[str, str]], kind: str) -> None:
    settings, versions = spoiled
    env = {"MOMOGUARD_RUN_DIR": str(settings.run_dir), "MOMOGUARD_MLFLOW_TRACKING_URI": ""}
    done = run_momoguard("models", "promote", versions[kind], env=env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot promote {settings.model_name} version {versions[kind]}: ")
    assert BAD_VERSIONS[kind] in lines[0]
    assert registry.champion_version(settings) == "1", "the alias stays where it was"


def test_register_refuses_a_bad_version_and_leaves_nothing_behind(tmp_path: Path) -> None:
    settings = local_registry(tmp_path)
    booster = train_booster(rounds=5)
    common = {"params": {}, "metrics": {}, "example": None, "artifacts": [], "tags": {}}
    bad = [(float("nan"), "pre_settlement"), (-1.0, "pre_settlement"), (0.5, "mystery"), (0.5, "post_settlement")]
    for threshold, feature_set in bad:
        with pytest.raises(ModelUnusableError, match=r"^new momoguard-fraud version: "):
            registry.register(settings, booster=booster, feature_set=feature_set, threshold=threshold, **common)
    assert registry.list_versions(settings) == []


def promoted_chain(folder: Path) -> Settings:
    """Versions 1, 2 and 3, each promoted in turn: 3 is champion, 2 and 1 are retired."""
    settings = local_registry(folder)
    for rounds in (20, 21, 22):
        register_model(settings, rounds=rounds, threshold=0.5, tmp=folder)
    return settings


@pytest.mark.parametrize("kind", BAD_VERSIONS)
def test_an_unusable_champion_falls_back_along_the_previous_champion_chain(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = promoted_chain(tmp_path)
    spoil(settings, "3", kind)
    spoil(settings, "2", "text threshold" if kind == "nan threshold" else "nan threshold")
    with pytest.raises(ModelUnusableError, match=BAD_VERSIONS[kind].replace("(", r"\(").replace(")", r"\)")):
        registry.load_champion(settings)  # strict by default: evaluate and bench score the champion or nothing
    with caplog.at_level(logging.WARNING, logger="registry.versions"):
        model = registry.load_champion(settings, fall_back=True)
    assert (model.version, model.threshold) == ("1", 0.5)
    (warning,) = [r.getMessage() for r in caplog.records if "last good champion" in r.getMessage()]
    assert warning.startswith(f"champion unusable: {settings.model_name} version 3: ")
    assert warning.endswith("; scoring with version 1, the last good champion")
    assert BAD_VERSIONS[kind] in warning


def test_with_no_usable_version_loading_fails_with_one_line(tmp_path: Path) -> None:
    settings = promoted_chain(tmp_path)
    for version in ("1", "2", "3"):
        spoil(settings, version, "corrupt model file")
    with pytest.raises(ModelUnusableError) as error:
        registry.load_champion(settings, fall_back=True)
    message = str(error.value)
    assert message.startswith("momoguard-fraud version 3: ") and message.endswith("no earlier champion is usable")
    assert "\n" not in message


def test_fallback_order_is_the_chain_then_other_former_champions_newest_first(tmp_path: Path) -> None:
    settings = local_registry(tmp_path)
    name = settings.model_name
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    client.create_registered_model(name)
    statuses = {"1": "retired", "2": "retired", "3": "candidate", "4": "rolled_back", "5": "champion", "6": "retired"}
    previous = {"5": "2", "2": "1", "6": "4"}
    for version, status in statuses.items():
        assert client.create_model_version(name, source=f"file:///nowhere/{version}").version == int(version)
        client.set_model_version_tag(name, version, registry.TAG_STATUS, status)
        if version in previous:
            client.set_model_version_tag(name, version, registry.TAG_PREVIOUS, previous[version])
    assert registry.fallback_versions(settings, "5") == ["2", "1", "6"]
    # Rolled back by an operator: skipped even in the chain.
    assert registry.fallback_versions(settings, "6") == ["5", "2", "1"]
    # A champion forced in without `promote` has no chain: every former champion, newest first.
    assert registry.fallback_versions(settings, "3") == ["6", "5", "2", "1"]
