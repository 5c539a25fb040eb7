"""Reason codes and their texts: every code a model can emit has an English text; a translation falls back to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from schemas.features import FEATURE_SETS, feature_names
from schemas.verdict import REASON_CODE_PATTERN
from stream_app.reasons import CATALOG_DIR, every_code, load_catalog, reason_code


def test_every_code_a_model_can_emit_has_an_english_text() -> None:
    shipped = json.loads((CATALOG_DIR / "en.json").read_text(encoding="utf-8"))["texts"]
    for feature_set in FEATURE_SETS:
        for name in feature_names(feature_set):
            for contribution in (0.7, -0.7):
                code = reason_code(name, contribution)
                assert code in shipped, f"{code} ({feature_set}) has no text in en.json"
                assert shipped[code].strip() and "\n" not in shipped[code]
                assert len(shipped[code]) <= 120, f"{code}: too long for an SMS"
    assert set(shipped) == set(every_code()), "no text for a code no model emits"


def test_codes_are_stable_and_say_which_way_the_feature_pushed() -> None:
    import re

    assert reason_code("amount", 1.2) == "AMOUNT_RAISES"
    assert reason_code("amount", -0.01) == "AMOUNT_LOWERS"
    assert all(re.fullmatch(REASON_CODE_PATTERN, code) for code in every_code())


def test_a_missing_translation_falls_back_to_english(tmp_path: Path) -> None:
    english = load_catalog()
    translated = {"AMOUNT_RAISES": "Le montant a augmenté le risque."}
    (tmp_path / "fr.json").write_text(json.dumps({"language": "fr", "texts": translated}), encoding="utf-8")
    french = load_catalog("fr", tmp_path)
    assert french.language == "fr"
    assert french.text("AMOUNT_RAISES") == translated["AMOUNT_RAISES"]
    assert french.text("AMOUNT_LOWERS") == english.text("AMOUNT_LOWERS"), "untranslated: English"
    assert all(french.text(code) for code in every_code())


def test_a_language_without_a_catalog_or_a_broken_one_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no reason catalog for language 'sw'") as missing:
        load_catalog("sw", tmp_path)
    (tmp_path / "de.json").write_text('{"texts": ["not", "a", "mapping"]}', encoding="utf-8")
    with pytest.raises(ConfigError, match="must be an object") as broken:
        load_catalog("de", tmp_path)
    (tmp_path / "pt.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be read") as unreadable:
        load_catalog("pt", tmp_path)
    assert all("\n" not in str(e.value) for e in (missing, broken, unreadable))
