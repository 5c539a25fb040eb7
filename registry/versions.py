"""The MLflow model registry as MoMo Guard uses it: register, load, promote, roll back, list.

API the scorer relies on (all take the process's one `Settings`; each builds its own
`MlflowClient(tracking_uri=settings.tracking_uri)` and touches no global MLflow state):

- `champion(settings) -> ModelVersion | None` (with its tags) and `champion_version(settings) -> str | None`:
  what the `champion` alias points at, or None. One cheap registry call: poll it to hot-reload a new champion.
- `load_champion(settings, fall_back=False) -> LoadedModel` / `load_version(settings, version) -> LoadedModel`.
  `LoadedModel` has `name`, `version` (str), `threshold` (float; block when score >= threshold),
  `feature_set` (str, a name known to `schemas.features`), `booster` (a native `lightgbm.Booster`: call
  `booster.predict(X)` for fraud probabilities and `booster.predict(X, pred_contrib=True)` for per-feature
  log-odds contributions, last column the bias) and `feature_names` (the columns of X, in order).
  Build X with `schemas.features.build_features(frame, model.feature_set)`; `LoadedModel.score(frame)`
  does both steps.
- Every version is checked by one rule, `check_version`, at register, promote (and rollback) and load: its
  threshold is a finite number in (0, 1], its review threshold (if it has one) a finite number in (0, 1] below
  the block threshold, its feature set is one `schemas.features` knows, its model file loads as a LightGBM
  booster and the booster's feature names are the feature set's, in order. A version that fails is never
  registered, never promoted and never scored with.
- With `fall_back=True` (a starting scorer worker), an unusable champion gives way to the last good version:
  first the `momoguard.previous_champion` chain (the champion it replaced, the one that one replaced, ...),
  then the other versions that were champion (status `champion` or `retired`), newest first; versions rolled
  back or rejected are never used (`fallback_versions`).
- Errors, each with a one-line message, all `registry.errors.RegistryError`: `RegistryUnreachableError` (the
  tracking or artifact store did not answer: retry later), `ModelNotFoundError` (no such model, version or
  alias), `ModelUnusableError` (the version fails `check_version`: retrying does not help), and the base class
  itself for a refused operation (a rollback with nothing to go back to).

Each model version carries the tags below (the threshold and feature set also sit in the logged model's
metadata, as a fallback): `momoguard.threshold`, `momoguard.review_threshold` (optional: review when
`review_threshold <= score < threshold`, if the scorer's review tier is on), `momoguard.feature_set`,
`momoguard.status` (candidate, champion, rejected, retired, rolled_back), `momoguard.reason`,
`momoguard.previous_champion` (set when it was promoted: the version `momoguard models rollback` goes back to),
and test metrics.
"""

from __future__ import annotations

import logging
import math
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from registry.errors import ModelNotFoundError, ModelUnusableError, RegistryError, RegistryUnreachableError
from schemas.drift import DriftReference
from schemas.features import FEATURE_SETS, build_features, feature_names

if TYPE_CHECKING:
    import lightgbm as lgb
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from core.settings import Settings

logger = logging.getLogger(__name__)

CHAMPION = "champion"
# The version the scorer shadows: scored on every batch beside the champion, its verdicts never acted on.
CHALLENGER = "challenger"
TAG_CHALLENGER_SINCE = "momoguard.challenger_since"
TAG_THRESHOLD = "momoguard.threshold"
TAG_REVIEW_THRESHOLD = "momoguard.review_threshold"
TAG_FEATURE_SET = "momoguard.feature_set"
TAG_STATUS = "momoguard.status"
TAG_REASON = "momoguard.reason"
TAG_PREVIOUS = "momoguard.previous_champion"
TAG_METRIC_PREFIX = "momoguard.test_"
# Where a worker may fall back to: versions that were champion, unless taken out of service since.
_ONCE_CHAMPION = ("champion", "retired")
_OUT_OF_SERVICE = ("rolled_back", "rejected")


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version ready to score: the native booster plus what scoring needs."""

    name: str
    version: str
    threshold: float
    feature_set: str
    booster: lgb.Booster
    feature_names: list[str]
    review_threshold: float | None = None  # review when review_threshold <= score < threshold (tier on)
    reference: DriftReference | None = None  # the train window's histograms, for the scorer's PSI

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
            raise RegistryUnreachableError(f"MLflow tracking server {uri} is unreachable: {reason}") from error
    try:
        client(settings).search_experiments(max_results=1)
    except Exception as error:  # MLflow wraps store failures in many types; all mean "cannot use it"
        raise RegistryUnreachableError(f"MLflow tracking store {uri} is unusable: {_first_line(error)}") from error


def check_version(
    where: str, threshold: Any, feature_set: Any, booster_names: Sequence[str], review_threshold: Any = None
) -> tuple[float, str]:
    """The threshold and feature set of a version fit to score; ModelUnusableError saying what is wrong otherwise.

    The one rule for register, promote and load. A NaN threshold lets every fraud through (no score is >= NaN)
    and one of 0 or below blocks every customer, so only a finite number in (0, 1] passes. A review threshold,
    when the version has one, is held to the same bounds and must lie below the block threshold
    (`check_review_threshold`).
    """
    value = _threshold(where, "threshold", TAG_THRESHOLD, threshold)
    check_review_threshold(where, review_threshold, value)
    if not isinstance(feature_set, str) or feature_set not in FEATURE_SETS:
        known = ", ".join(FEATURE_SETS)
        raise ModelUnusableError(f"{where}: unknown feature set {feature_set!r} (known: {known})")
    expected = feature_names(feature_set)
    names = list(booster_names)
    if names != expected:
        at = next((i for i, pair in enumerate(zip(names, expected, strict=False)) if pair[0] != pair[1]), None)
        detail = f"column {at} is {names[at]!r}, not {expected[at]!r}" if at is not None else "columns missing or extra"
        raise ModelUnusableError(
            f"{where}: its booster's {len(names)} features are not the {len(expected)} of {feature_set!r} ({detail})"
        )
    return value, feature_set


def check_review_threshold(where: str, review_threshold: Any, threshold: float) -> float | None:
    """A version's review threshold as a number, None when it has none; ModelUnusableError when it is unusable.

    A review threshold at or above the block threshold would leave no score to review, and one of 0 or NaN would
    send every transaction (or none) to review: only a finite number in (0, threshold) passes.
    """
    if review_threshold is None or review_threshold == "":
        return None
    value = _threshold(where, "review threshold", TAG_REVIEW_THRESHOLD, review_threshold)
    if value >= threshold:
        raise ModelUnusableError(
            f"{where}: review threshold {review_threshold!r} is not below the block threshold {threshold!r}"
        )
    return value


def _threshold(where: str, what: str, tag: str, given: Any) -> float:
    if given is None:
        raise ModelUnusableError(f"{where}: no {what} (tag {tag})")
    try:
        value = float(given)
    except (TypeError, ValueError):
        raise ModelUnusableError(f"{where}: {what} {given!r} is not a number") from None
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ModelUnusableError(f"{where}: {what} {given!r} is not a finite number in (0, 1]")
    return value


def champion(settings: Settings) -> ModelVersion | None:
    """The version behind the `champion` alias, with its tags; None when there is no champion (or no model yet)."""
    return _by_alias(settings, CHAMPION)


def challenger(settings: Settings) -> ModelVersion | None:
    """The version behind the `challenger` alias, with its tags; None when none is set. One cheap call, for polling."""
    return _by_alias(settings, CHALLENGER)


def challenger_version(settings: Settings) -> str | None:
    """The version behind the `challenger` alias, or None."""
    found = challenger(settings)
    return None if found is None else str(found.version)


def _by_alias(settings: Settings, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client(settings).get_model_version_by_alias(settings.model_name, alias)
    except Exception as error:  # MLflow wraps store failures in many types; all but "not found" mean unreachable
        if isinstance(error, MlflowException) and _is_not_found(error):
            return None
        raise RegistryUnreachableError(f"cannot read the {alias} alias: {_first_line(error)}") from error


def champion_version(settings: Settings) -> str | None:
    """The version behind the `champion` alias, or None when there is no champion (or no model yet)."""
    found = champion(settings)
    return None if found is None else str(found.version)


def load_champion(
    settings: Settings, fall_back: bool = False, check: Callable[[LoadedModel], LoadedModel] | None = None
) -> LoadedModel:
    """The current champion, ready to score.

    With `fall_back`, an unusable champion gives way to the first usable version of `fallback_versions`, with a
    warning naming both; ModelUnusableError when none is usable. `check` is what the caller adds to "usable" (a
    scorer: a version it can serve), raising ModelUnusableError.
    """
    version = champion_version(settings)
    if version is None:
        raise ModelNotFoundError(f"model {settings.model_name!r} has no champion yet: run `momoguard train`")

    def usable(candidate: str) -> LoadedModel:
        model = load_version(settings, candidate)
        return check(model) if check is not None else model

    try:
        return usable(version)
    except ModelUnusableError as error:
        if not fall_back:
            raise
        problem = error
    for candidate in fallback_versions(settings, version):
        try:
            model = usable(candidate)
        except (ModelUnusableError, ModelNotFoundError) as error:
            logger.warning("cannot fall back to version %s either: %s", candidate, error)
            continue
        logger.warning("champion unusable: %s; scoring with version %s, the last good champion", problem, candidate)
        return model
    raise ModelUnusableError(f"{problem}; and no earlier champion is usable")


def fallback_versions(settings: Settings, unusable: str) -> list[str]:
    """The versions to try, best first, when the champion `unusable` cannot score.

    The `momoguard.previous_champion` chain from it (the champion it replaced, the one that one replaced, ...),
    then every other version that was champion (status `champion` or `retired`), newest first. Versions rolled
    back or rejected, and candidates never promoted, are left out.
    """
    try:
        found = client(settings).search_model_versions(f"name = '{settings.model_name}'")
    except Exception as error:
        raise RegistryUnreachableError(f"cannot list {settings.model_name}: {_first_line(error)}") from error
    tags = {str(v.version): dict(v.tags) for v in found}
    chain: list[str] = []
    at = tags.get(unusable, {}).get(TAG_PREVIOUS)
    while at is not None and at in tags and at != unusable and at not in chain:
        chain.append(at)
        at = tags[at].get(TAG_PREVIOUS)
    chain = [v for v in chain if tags[v].get(TAG_STATUS) not in _OUT_OF_SERVICE]
    newest_first = sorted(tags, key=int, reverse=True)
    return chain + [
        v for v in newest_first if v not in (unusable, *chain) and tags[v].get(TAG_STATUS) in _ONCE_CHAMPION
    ]


def load_version(settings: Settings, version: str) -> LoadedModel:
    """One registered version, checked by `check_version` and ready to score."""
    found = get_version(settings, version)
    where = f"{settings.model_name} version {found.version}"
    with tempfile.TemporaryDirectory(prefix="momoguard-model-") as tmp:
        booster, metadata = _read_model(_download(settings, found, Path(tmp), where), where)
    tags = dict(found.tags)
    names = list(booster.feature_name())
    review = tags.get(TAG_REVIEW_THRESHOLD, metadata.get("review_threshold"))
    threshold, feature_set = check_version(
        where,
        tags.get(TAG_THRESHOLD, metadata.get("threshold")),
        tags.get(TAG_FEATURE_SET, metadata.get("feature_set")),
        names,
        review,
    )
    return LoadedModel(
        settings.model_name,
        str(found.version),
        threshold,
        feature_set,
        booster,
        names,
        review_threshold=check_review_threshold(where, review, threshold),
        reference=_drift_reference(metadata.get("drift_reference"), where, names),
    )


def _drift_reference(stored: Any, where: str, names: list[str]) -> DriftReference | None:
    """The version's drift reference; None (drift not watched, scoring unaffected) when it has none or a bad one."""
    if stored is None:
        return None
    try:
        reference = DriftReference.from_dict(stored)
    except ValueError as error:
        logger.warning("%s: its drift reference is unusable (%s); drift is not watched for it", where, error)
        return None
    if list(reference.inputs[:-1]) != names:
        logger.warning("%s: its drift reference names other features; drift is not watched for it", where)
        return None
    return reference


def _download(settings: Settings, found: ModelVersion, into: Path, where: str) -> Path:
    import mlflow

    try:
        uri = client(settings).get_model_version_download_uri(settings.model_name, found.version)
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(into), tracking_uri=settings.tracking_uri
            )
        )
    except Exception as error:
        if isinstance(error, FileNotFoundError) or _is_not_found(error):
            raise ModelUnusableError(f"{where}: its model files are missing ({_first_line(error)})") from error
        raise RegistryUnreachableError(f"cannot download {where}: {_first_line(error)}") from error


def _read_model(local: Path, where: str) -> tuple[lgb.Booster, dict[str, Any]]:
    """The booster and the metadata of a downloaded model; ModelUnusableError with the cause if unreadable."""
    import mlflow

    try:
        logged = mlflow.models.Model.load(local / "MLmodel")
        _check_lightgbm_text(local / logged.flavors["lightgbm"]["data"])
        booster = mlflow.lightgbm.load_model(str(local))
    except Exception as error:
        raise ModelUnusableError(f"{where}: its model cannot be read: {_first_line(error)}") from error
    return booster, dict(logged.metadata or {})


def _check_lightgbm_text(path: Path) -> None:
    # LightGBM's C++ loader prints "[LightGBM] [Fatal] ..." on stderr before it raises: refusing a file that is
    # not a whole LightGBM text model here keeps the failure to the one line of the raised error.
    text = path.read_bytes()
    if not text.startswith(b"tree\n") or b"\nend of trees\n" not in text:
        raise ValueError(f"{path.name} is not a complete LightGBM text model ({len(text):,} bytes)")


def get_version(settings: Settings, version: str) -> ModelVersion:
    """A version by number, or by alias (`champion`)."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    try:
        if version.isdigit():
            return c.get_model_version(settings.model_name, version)
        return c.get_model_version_by_alias(settings.model_name, version)
    except Exception as error:  # MLflow wraps store failures in many types; all but "not found" mean unreachable
        if isinstance(error, MlflowException) and _is_not_found(error):
            raise ModelNotFoundError(f"model {settings.model_name!r} has no version {version!r}") from error
        raise RegistryUnreachableError(
            f"cannot read {settings.model_name} version {version}: {_first_line(error)}"
        ) from error


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
    review_threshold: float | None = None,
    params: dict[str, Any],
    metrics: dict[str, float],
    example: np.ndarray,
    artifacts: list[Path],
    tags: dict[str, str],
    drift_reference: DriftReference | None = None,
) -> Registration:
    """Log a run (params, metrics, artifacts, LightGBM model with signature) and register it as a candidate.

    The version is checked (`check_version`) before anything is logged and loaded back once registered. On any
    failure the run is marked failed and a version created on the way is deleted, so the registry never holds
    a half-registered or unusable model.
    """
    import lightgbm as lgb
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    check_version(
        f"new {settings.model_name} version", threshold, feature_set, booster.feature_name(), review_threshold
    )
    review_tag = {} if review_threshold is None else {TAG_REVIEW_THRESHOLD: repr(float(review_threshold))}
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
                metadata={
                    "threshold": threshold,
                    "feature_set": feature_set,
                    "feature_names": names,
                    **({} if review_threshold is None else {"review_threshold": review_threshold}),
                    **({"drift_reference": drift_reference.to_dict()} if drift_reference is not None else {}),
                },
                pip_requirements=[f"lightgbm=={lgb.__version__}"],
            )
            registered = mlflow.register_model(
                info.model_uri,
                settings.model_name,
                tags={
                    TAG_THRESHOLD: repr(float(threshold)),
                    **review_tag,
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
            load_version(settings, version)  # what was logged loads back and passes the check
            mlflow.set_tag("momoguard.model_version", version)
        except BaseException as error:
            mlflow.end_run(status="FAILED")
            if version is not None:
                _delete_quietly(settings, version)
            if isinstance(error, RegistryError):
                raise
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
    """Point `champion` at `version`, remembering the previous champion on it; returns that previous one.

    An unusable version (`check_version`) is refused with ModelUnusableError and the alias stays where it is.
    """
    found = get_version(settings, version)
    _check_loads(settings, str(found.version), "cannot promote")
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
    if challenger_version(settings) == str(found.version):  # a champion shadows nothing: it is what is scored
        c.delete_registered_model_alias(settings.model_name, CHALLENGER)
    logger.info("%s version %s is champion (was %s): %s", settings.model_name, found.version, previous, reason)
    return previous


def make_challenger(settings: Settings, version: str, reason: str) -> str | None:
    """Point `challenger` at `version` (the scorer shadows it from its next poll); returns the previous challenger.

    The version must pass `check_version` and must not be the champion. It is tagged with status `challenger`,
    the reason and when it started (`momoguard.challenger_since`, UTC); a challenger it replaces goes back to
    `candidate`.
    """
    from datetime import UTC, datetime

    found = get_version(settings, version)
    number = str(found.version)
    _check_loads(settings, number, "cannot shadow with")
    if champion_version(settings) == number:
        raise RegistryError(f"{settings.model_name} version {number} is the champion: it cannot be its own challenger")
    previous = challenger_version(settings)
    if previous == number:
        return previous
    c = client(settings)
    if previous is not None:
        c.set_model_version_tag(settings.model_name, previous, TAG_STATUS, "candidate")
    c.set_model_version_tag(settings.model_name, number, TAG_STATUS, "challenger")
    c.set_model_version_tag(settings.model_name, number, TAG_REASON, reason)
    c.set_model_version_tag(settings.model_name, number, TAG_CHALLENGER_SINCE, datetime.now(UTC).isoformat())
    c.set_registered_model_alias(settings.model_name, CHALLENGER, number)
    logger.info("%s version %s is challenger (was %s): %s", settings.model_name, number, previous, reason)
    return previous


def clear_challenger(settings: Settings, status: str = "candidate", reason: str | None = None) -> str | None:
    """Remove the `challenger` alias (the scorer stops shadowing at its next poll); returns the version it named."""
    current = challenger_version(settings)
    if current is None:
        return None
    c = client(settings)
    c.delete_registered_model_alias(settings.model_name, CHALLENGER)
    c.set_model_version_tag(settings.model_name, current, TAG_STATUS, status)
    if reason:
        c.set_model_version_tag(settings.model_name, current, TAG_REASON, reason)
    logger.info("%s version %s is no longer challenger (%s)", settings.model_name, current, reason or status)
    return current


def rollback(settings: Settings) -> tuple[str, str]:
    """Give `champion` back to the version it replaced; returns (from, to)."""
    current = champion_version(settings)
    if current is None:
        raise ModelNotFoundError(f"model {settings.model_name!r} has no champion to roll back")
    previous = dict(get_version(settings, current).tags).get(TAG_PREVIOUS)
    if not previous:
        raise RegistryError(f"{settings.model_name} version {current} replaced no earlier champion")
    _check_loads(settings, previous, "cannot roll back to")  # it must still exist and be usable
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
    review_threshold: str
    auprc: str
    fraud_amount_recall: str
    reason: str


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
        raise RegistryUnreachableError(f"cannot list {settings.model_name}: {_first_line(error)}") from error
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
                review_threshold=tags.get(TAG_REVIEW_THRESHOLD, ""),
                auprc=tags.get(TAG_METRIC_PREFIX + "auprc", ""),
                fraud_amount_recall=tags.get(TAG_METRIC_PREFIX + "fraud_amount_recall", ""),
                reason=tags.get(TAG_REASON, ""),
            )
        )
    return sorted(rows, key=lambda r: int(r.version), reverse=True)


def _check_loads(settings: Settings, version: str, refusal: str) -> None:
    try:
        load_version(settings, version)
    except ModelUnusableError as error:
        raise ModelUnusableError(f"{refusal} {error}") from error


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
