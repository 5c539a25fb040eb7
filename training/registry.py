"""The MLflow model registry as MoMo Guard uses it: register, load, promote, roll back, list.

API the scorer relies on (all take the process's one `Settings`; each builds its own
`MlflowClient(tracking_uri=settings.tracking_uri)` and touches no global MLflow state):

- `champion_version(settings) -> str | None`: the version the `champion` alias points at, or None. One
  cheap registry call: poll it to hot-reload a new champion.
- `load_champion(settings) -> LoadedModel` / `load_version(settings, version) -> LoadedModel`.
  `LoadedModel` has `name`, `version` (str), `threshold` (float; block when score >= threshold),
  `feature_set` (str, a name known to `schemas.features`), `booster` (a native `lightgbm.Booster`: call
  `booster.predict(X)` for fraud probabilities and `booster.predict(X, pred_contrib=True)` for per-feature
  log-odds contributions, last column the bias) and `feature_names` (the columns of X, in order).
  Build X with `schemas.features.build_features(frame, model.feature_set)`; `LoadedModel.score(frame)`
  does both steps.
- Errors are `training.errors.RegistryError` (unreachable store, refused operation) and its subclass
  `ModelNotFoundError` (no such model, version or alias), each with a one-line message.

Each model version carries the tags below (the threshold and feature set also sit in the logged model's
metadata, as a fallback): `momoguard.threshold`, `momoguard.feature_set`, `momoguard.status`
(candidate, champion, rejected, retired, rolled_back), `momoguard.reason`, `momoguard.previous_champion`
(set when it was promoted: the version `momoguard models rollback` goes back to), and test metrics.
"""

from __future__ import annotations

import logging
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from schemas.features import build_features, feature_names
from training.errors import ModelNotFoundError, RegistryError

if TYPE_CHECKING:
    import lightgbm as lgb
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from momoguard.settings import Settings

logger = logging.getLogger(__name__)

CHAMPION = "champion"
TAG_THRESHOLD = "momoguard.threshold"
TAG_FEATURE_SET = "momoguard.feature_set"
TAG_STATUS = "momoguard.status"
TAG_REASON = "momoguard.reason"
TAG_PREVIOUS = "momoguard.previous_champion"
TAG_METRIC_PREFIX = "momoguard.test_"


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version ready to score: the native booster plus what scoring needs."""

    name: str
    version: str
    threshold: float
    feature_set: str
    booster: lgb.Booster
    feature_names: list[str]

    def score(self, frame: pl.DataFrame) -> np.ndarray:
        """Fraud probabilities for a PaySim frame."""
        return np.asarray(self.booster.predict(build_features(frame, self.feature_set)), dtype=np.float64)


def client(settings: Settings) -> MlflowClient:
    """A client bound to the settings' tracking URI (also used as registry URI)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def check_reachable(settings: Settings) -> None:
    """Fail fast, with one line, when the tracking store cannot be reached (before any training work)."""
    uri = settings.tracking_uri
    if not settings.mlflow_tracking_uri:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
                pass
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryError(f"MLflow tracking server {uri} is unreachable: {reason}") from error
    try:
        client(settings).search_experiments(max_results=1)
    except Exception as error:  # MLflow wraps store failures in many types; all mean "cannot use it"
        raise RegistryError(f"MLflow tracking store {uri} is unusable: {_first_line(error)}") from error


def champion_version(settings: Settings) -> str | None:
    """The version behind the `champion` alias, or None when there is no champion (or no model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client(settings).get_model_version_by_alias(settings.model_name, CHAMPION).version)
    except MlflowException as error:
        if _is_not_found(error):
            return None
        raise RegistryError(f"cannot read the champion alias: {_first_line(error)}") from error


def load_champion(settings: Settings) -> LoadedModel:
    """The current champion, ready to score."""
    version = champion_version(settings)
    if version is None:
        raise ModelNotFoundError(f"model {settings.model_name!r} has no champion yet: run `momoguard train`")
    return load_version(settings, version)


def load_version(settings: Settings, version: str) -> LoadedModel:
    """One registered version, ready to score."""
    import mlflow

    found = get_version(settings, version)
    c = client(settings)
    try:
        uri = c.get_model_version_download_uri(settings.model_name, found.version)
        with tempfile.TemporaryDirectory(prefix="momoguard-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=tmp, tracking_uri=settings.tracking_uri
            )
            booster = mlflow.lightgbm.load_model(local)
            metadata = mlflow.models.Model.load(Path(local) / "MLmodel").metadata or {}
    except Exception as error:
        raise RegistryError(
            f"cannot load {settings.model_name} version {found.version}: {_first_line(error)}"
        ) from error
    tags = dict(found.tags)
    threshold = tags.get(TAG_THRESHOLD, metadata.get("threshold"))
    feature_set = tags.get(TAG_FEATURE_SET, metadata.get("feature_set"))
    if threshold is None or feature_set is None:
        raise RegistryError(f"{settings.model_name} version {found.version} has no threshold or feature set")
    names = list(booster.feature_name())
    if names != feature_names(str(feature_set)):
        raise RegistryError(
            f"{settings.model_name} version {found.version} was trained on features that "
            f"schemas.features no longer builds for {feature_set!r}"
        )
    return LoadedModel(settings.model_name, str(found.version), float(threshold), str(feature_set), booster, names)


def get_version(settings: Settings, version: str) -> ModelVersion:
    """A version by number, or by alias (`champion`)."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    try:
        if version.isdigit():
            return c.get_model_version(settings.model_name, version)
        return c.get_model_version_by_alias(settings.model_name, version)
    except MlflowException as error:
        if _is_not_found(error):
            raise ModelNotFoundError(f"model {settings.model_name!r} has no version {version!r}") from error
        raise RegistryError(f"cannot read {settings.model_name} version {version}: {_first_line(error)}") from error


@contextmanager
def tracking(settings: Settings) -> Iterator[None]:
    """Point MLflow's fluent API (runs, log_model) at the settings' store for the block, then restore it."""
    import mlflow

    previous_tracking = mlflow.get_tracking_uri()
    previous_registry = mlflow.get_registry_uri()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_tracking)
        mlflow.set_registry_uri(previous_registry)


def experiment_id(settings: Settings) -> str:
    """The training experiment, created on first use (artifacts under the run folder for the local store)."""
    c = client(settings)
    found = c.get_experiment_by_name(settings.experiment_name)
    if found is not None:
        return str(found.experiment_id)
    location = None if settings.mlflow_tracking_uri else settings.artifact_location
    return str(c.create_experiment(settings.experiment_name, artifact_location=location))


@dataclass(frozen=True)
class Registration:
    """What `register` produced."""

    version: str
    run_id: str


def register(
    settings: Settings,
    *,
    booster: lgb.Booster,
    feature_set: str,
    threshold: float,
    params: dict[str, Any],
    metrics: dict[str, float],
    example: np.ndarray,
    artifacts: list[Path],
    tags: dict[str, str],
) -> Registration:
    """Log a run (params, metrics, artifacts, LightGBM model with signature) and register it as a candidate.

    On any failure the run is marked failed and a version created on the way is deleted, so the registry
    never holds a half-registered model.
    """
    import lightgbm as lgb
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    names = feature_names(feature_set)
    version: str | None = None
    with tracking(settings):
        run = mlflow.start_run(experiment_id=experiment_id(settings))
        try:
            mlflow.log_params({**params, "feature_set": feature_set})
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
            mlflow.set_tags(tags)
            for path in artifacts:
                mlflow.log_artifact(str(path), artifact_path="report")
            sample = pd.DataFrame(example[:5], columns=names)
            info = mlflow.lightgbm.log_model(
                booster,
                name="model",
                signature=infer_signature(sample, booster.predict(sample.to_numpy())),
                input_example=sample,
                metadata={"threshold": threshold, "feature_set": feature_set, "feature_names": names},
                pip_requirements=[f"lightgbm=={lgb.__version__}"],
            )
            registered = mlflow.register_model(
                info.model_uri,
                settings.model_name,
                tags={
                    TAG_THRESHOLD: repr(float(threshold)),
                    TAG_FEATURE_SET: feature_set,
                    TAG_STATUS: "candidate",
                    **{
                        TAG_METRIC_PREFIX + k.removeprefix("test_"): f"{v:.6f}"
                        for k, v in metrics.items()
                        if k.startswith("test_") and np.isfinite(v)
                    },
                    "momoguard.run_id": run.info.run_id,
                },
            )
            version = str(registered.version)
            mlflow.set_tag("momoguard.model_version", version)
        except BaseException as error:
            mlflow.end_run(status="FAILED")
            if version is not None:
                _delete_quietly(settings, version)
            if isinstance(error, Exception):
                raise RegistryError(f"registering the model failed: {_first_line(error)}") from error
            raise
        mlflow.end_run()
    logger.info("registered %s version %s (run %s)", settings.model_name, version, run.info.run_id)
    return Registration(version, run.info.run_id)


def set_tags(settings: Settings, version: str, tags: dict[str, str]) -> None:
    """Set tags on one version."""
    c = client(settings)
    for key, value in tags.items():
        c.set_model_version_tag(settings.model_name, version, key, value)


def make_champion(settings: Settings, version: str, reason: str) -> str | None:
    """Point `champion` at `version`, remembering the previous champion on it; returns that previous one."""
    found = get_version(settings, version)
    previous = champion_version(settings)
    if previous == str(found.version):
        return previous
    c = client(settings)
    if previous is not None:
        c.set_model_version_tag(settings.model_name, found.version, TAG_PREVIOUS, previous)
        c.set_model_version_tag(settings.model_name, previous, TAG_STATUS, "retired")
    else:
        c.delete_model_version_tag(settings.model_name, found.version, TAG_PREVIOUS)
    c.set_model_version_tag(settings.model_name, found.version, TAG_STATUS, "champion")
    c.set_model_version_tag(settings.model_name, found.version, TAG_REASON, reason)
    c.set_registered_model_alias(settings.model_name, CHAMPION, found.version)
    logger.info("%s version %s is champion (was %s): %s", settings.model_name, found.version, previous, reason)
    return previous


def rollback(settings: Settings) -> tuple[str, str]:
    """Give `champion` back to the version it replaced; returns (from, to)."""
    current = champion_version(settings)
    if current is None:
        raise ModelNotFoundError(f"model {settings.model_name!r} has no champion to roll back")
    previous = dict(get_version(settings, current).tags).get(TAG_PREVIOUS)
    if not previous:
        raise RegistryError(f"{settings.model_name} version {current} replaced no earlier champion")
    get_version(settings, previous)  # it must still exist
    c = client(settings)
    c.set_registered_model_alias(settings.model_name, CHAMPION, previous)
    c.set_model_version_tag(settings.model_name, current, TAG_STATUS, "rolled_back")
    c.set_model_version_tag(settings.model_name, previous, TAG_STATUS, "champion")
    logger.info("rolled %s back from version %s to %s", settings.model_name, current, previous)
    return current, previous


@dataclass(frozen=True)
class VersionRow:
    """One line of `momoguard models list`."""

    version: str
    aliases: list[str]
    status: str
    feature_set: str
    threshold: str
    auprc: str
    fraud_amount_recall: str
    reason: str
    created: int


def list_versions(settings: Settings) -> list[VersionRow]:
    """Every version of the registered model, newest first."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    try:
        registered = c.get_registered_model(settings.model_name)
        versions = c.search_model_versions(f"name = '{settings.model_name}'")
    except MlflowException as error:
        if _is_not_found(error):
            return []
        raise RegistryError(f"cannot list {settings.model_name}: {_first_line(error)}") from error
    aliases: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in versions:
        tags = dict(v.tags)
        rows.append(
            VersionRow(
                version=str(v.version),
                aliases=sorted(aliases.get(str(v.version), [])),
                status=tags.get(TAG_STATUS, ""),
                feature_set=tags.get(TAG_FEATURE_SET, ""),
                threshold=tags.get(TAG_THRESHOLD, ""),
                auprc=tags.get(TAG_METRIC_PREFIX + "auprc", ""),
                fraud_amount_recall=tags.get(TAG_METRIC_PREFIX + "fraud_amount_recall", ""),
                reason=tags.get(TAG_REASON, ""),
                created=int(v.creation_timestamp or 0),
            )
        )
    return sorted(rows, key=lambda r: int(r.version), reverse=True)


def _delete_quietly(settings: Settings, version: str) -> None:
    try:
        client(settings).delete_model_version(settings.model_name, version)
        logger.warning("deleted half-registered %s version %s", settings.model_name, version)
    except Exception:  # the original failure is the one worth reporting
        logger.exception("could not delete half-registered %s version %s", settings.model_name, version)


def _is_not_found(error: Exception) -> bool:
    code = getattr(error, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(error).lower()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
