"""Unusable registry versions made behind the registry's back, as a careless operator or a broken disk would."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from core.settings import Settings
from registry import TAG_FEATURE_SET, TAG_THRESHOLD

# Each way to spoil a version, and what the scorer must say about it.
BAD_VERSIONS: dict[str, str] = {
    "nan threshold": "threshold 'nan' is not a finite number in (0, 1]",
    "negative threshold": "threshold '-1' is not a finite number in (0, 1]",
    "text threshold": "threshold 'abc' is not a number",
    "unknown feature set": "unknown feature set 'mystery_settlement'",
    "corrupt model file": "model.lgb is not a complete LightGBM text model",
}
_TAGS = {
    "nan threshold": (TAG_THRESHOLD, "nan"),
    "negative threshold": (TAG_THRESHOLD, "-1"),
    "text threshold": (TAG_THRESHOLD, "abc"),
    "unknown feature set": (TAG_FEATURE_SET, "mystery_settlement"),
}


def spoil(settings: Settings, version: str, kind: str) -> None:
    """Force a bad tag in with the MLflow client, or overwrite the model file in the local artifact store."""
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    if kind == "corrupt model file":
        folder = client.get_model_version_download_uri(settings.model_name, version).removeprefix("file://")
        model_file = Path(folder) / "model.lgb"
        assert model_file.is_file(), f"no model file at {model_file}"
        model_file.write_bytes(b"\x00\x01 these bytes are not a LightGBM model\n")
        return
    key, value = _TAGS[kind]
    client.set_model_version_tag(settings.model_name, version, key, value)
