"""Bad input fails with a one-line MomoGuardError and leaves no half-registered model behind."""

from __future__ import annotations

import socket
from pathlib import Path

import mlflow
import polars as pl
import pytest

import registry
from core.errors import DataError, MomoGuardError
from core.settings import Settings
from registry.errors import RegistryError
from tests.support.cli import run_momoguard
from tests.training.conftest import write_paysim_csv
from training.errors import NoFraudError
from training.flow import retrain

pytestmark = pytest.mark.usefixtures("prefect_harness")


def assert_nothing_registered(settings: Settings) -> None:
    assert registry.list_versions(settings) == []
    assert registry.champion_version(settings) is None


def assert_one_line(error: pytest.ExceptionInfo[MomoGuardError]) -> None:
    assert "\n" not in str(error.value) and str(error.value)


def test_empty_data(settings: Settings, windowed: pl.DataFrame, tmp_path: Path) -> None:
    empty = write_paysim_csv(windowed.clear(), tmp_path / "empty.csv")
    with pytest.raises(DataError) as error:
        retrain(csv=str(empty), settings=settings)
    assert_one_line(error)
    assert_nothing_registered(settings)


def test_window_without_fraud(settings: Settings, windowed: pl.DataFrame, tmp_path: Path) -> None:
    honest_end = windowed.with_columns(
        isFraud=pl.when(pl.col("step") > 32).then(0).otherwise(pl.col("isFraud")).cast(pl.Int8)
    )
    with pytest.raises(NoFraudError, match="test window") as error:
        retrain(csv=str(write_paysim_csv(honest_end, tmp_path / "honest.csv")), settings=settings)
    assert_one_line(error)
    assert_nothing_registered(settings)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_tracking_uri(settings: Settings, windowed: pl.DataFrame, tmp_path: Path) -> None:
    csv = str(write_paysim_csv(windowed, tmp_path / "good.csv"))
    away = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{closed_port()}"})
    with pytest.raises(RegistryError, match="unreachable") as error:
        retrain(csv=csv, settings=away)
    assert_one_line(error)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    nowhere = settings.model_copy(update={"mlflow_tracking_uri": f"sqlite:///{blocked}/mlflow.db"})
    with pytest.raises(RegistryError, match="unusable") as error:
        retrain(csv=csv, settings=nowhere)
    assert_one_line(error)


def test_failure_while_registering_leaves_no_version(
    settings: Settings, windowed: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    # The version exists by the time the run is tagged with it: the failure hits a registered model.
    monkeypatch.setattr(mlflow, "set_tag", refuse)
    with pytest.raises(RegistryError, match="registering the model failed: disk full") as error:
        retrain(csv=str(write_paysim_csv(windowed, tmp_path / "good.csv")), settings=settings)
    assert_one_line(error)
    assert_nothing_registered(settings)
    runs = mlflow.MlflowClient(settings.tracking_uri).search_runs([registry.experiment_id(settings)])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_cli_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    only = {"MOMOGUARD_RUN_DIR": str(tmp_path / "run"), "PATH": "/usr/bin:/bin"}
    done = run_momoguard("evaluate", str(tmp_path / "missing.csv"), env=only, inherit_env=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: no such file: {tmp_path / 'missing.csv'}"
