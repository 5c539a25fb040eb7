"""Reason codes and their plain-language texts: one catalog file per language in this folder, English shipped.

A verdict's reasons are the features that pushed its score most (SHAP contributions). Each carries a stable
code, the feature's name upper-cased and `_RAISES` (it pushed the score up) or `_LOWERS` (down), and the code's
short text from the catalog of `MOMOGUARD_REASON_LANGUAGE`, for the operator to put in a customer SMS. A
translation is one more file, `<language>.json`, beside `en.json` or in `MOMOGUARD_REASON_CATALOG_DIR`, holding
`{"language": ..., "texts": {code: text}}`: no code changes. A code a translation lacks falls back to English.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from core.errors import ConfigError
from schemas.features import FEATURE_SETS, feature_names

log = logging.getLogger(__name__)

CATALOG_DIR = Path(__file__).resolve().parent
FALLBACK_LANGUAGE = "en"
RAISES, LOWERS = "_RAISES", "_LOWERS"


def reason_code(feature: str, contribution: float) -> str:
    """The stable code of a feature's contribution: which feature, and which way it pushed the score."""
    return feature.upper() + (RAISES if contribution > 0 else LOWERS)


def codes_of(features: Iterable[str]) -> list[str]:
    """Every code these features can give, both ways."""
    return [reason_code(name, sign) for name in features for sign in (1.0, -1.0)]


def every_code() -> list[str]:
    """Every code any model of a known feature set can emit."""
    return list(dict.fromkeys(code for fs in FEATURE_SETS for code in codes_of(feature_names(fs))))


@dataclass(frozen=True)
class ReasonCatalog:
    """The texts of one language, English filling in the codes it lacks."""

    language: str
    texts: dict[str, str]

    def text(self, code: str) -> str:
        # Every code a model can emit has an English text (tests/stream_app/test_reasons.py); a code from a
        # feature set newer than the catalog still gets a readable line rather than nothing.
        return self.texts.get(code) or code.replace("_", " ").lower()


def _read(path: Path) -> dict[str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"reason catalog {path} cannot be read: {error}") from None
    texts = document.get("texts") if isinstance(document, dict) else None
    if not isinstance(texts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in texts.items()):
        raise ConfigError(f'reason catalog {path} must be an object with "texts": {{code: text}}')
    return {code: text.strip() for code, text in texts.items() if text.strip()}


def catalog_path(language: str, extra_dir: Path | None = None) -> Path | None:
    """Where the catalog of `language` is: the extra folder first, then the shipped one; None if nowhere."""
    for folder in (extra_dir, CATALOG_DIR):
        if folder is not None and (folder / f"{language}.json").is_file():
            return folder / f"{language}.json"
    return None


@cache
def load_catalog(language: str = FALLBACK_LANGUAGE, extra_dir: Path | None = None) -> ReasonCatalog:
    """The catalog of `language` over the English one; ConfigError (one line) when the language has no file."""
    english = _read(CATALOG_DIR / f"{FALLBACK_LANGUAGE}.json")
    if language == FALLBACK_LANGUAGE and extra_dir is None:
        return ReasonCatalog(language, english)
    path = catalog_path(language, extra_dir)
    if path is None:
        where = f"{extra_dir} or {CATALOG_DIR}" if extra_dir else str(CATALOG_DIR)
        raise ConfigError(
            f"no reason catalog for language {language!r} ({language}.json in {where}): "
            "add one, or set MOMOGUARD_REASON_LANGUAGE=en"
        )
    translated = _read(path)
    unknown = sorted(set(translated) - set(every_code()))
    if unknown:
        log.warning("reason catalog %s has texts for codes no model emits: %s", path, ", ".join(unknown[:5]))
    missing = [code for code in every_code() if code not in translated]
    if missing:
        log.info("reason catalog %s lacks %d code(s); they are given in English", path, len(missing))
    return ReasonCatalog(language, {**english, **translated})
