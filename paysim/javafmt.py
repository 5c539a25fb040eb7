"""Format numbers as Java's Double.toString does, the way PaySim wrote the Kaggle CSV (1.916920493E7)."""

from __future__ import annotations

import polars as pl

# Java switches to computerized scientific notation at 10^7 (and below 10^-3, which money never reaches).
_SCIENTIFIC_FROM = 1e7


def java_doubles(values: pl.Series) -> pl.Series:
    """A Float64 series as Java's Double.toString text: shortest round-trip digits, "0.0", "1.0E7".

    Polars prints the shortest digits that read back to the same double, as Java does; only the values of
    10^7 and more (about 1 % of PaySim's balances) need rewriting, from "19169204.93" to "1.916920493E7".
    """
    text = values.cast(pl.Utf8)
    big = (values.abs() >= _SCIENTIFIC_FROM).fill_null(False)
    if not big.any():
        return text
    return text.scatter(big.arg_true(), _scientific(values.filter(big)))


def _scientific(values: pl.Series) -> pl.Series:
    frame = pl.DataFrame({"x": values}).with_columns(text=pl.col("x").abs().cast(pl.Utf8))
    parts = pl.col("text").str.split_exact(".", 1)
    whole, fraction = parts.struct.field("field_0"), parts.struct.field("field_1")
    digits = pl.concat_str(whole, fraction).str.strip_chars_end("0")
    return frame.select(
        pl.concat_str(
            pl.when(pl.col("x") < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            digits.str.slice(0, 1),
            pl.lit("."),
            pl.when(digits.str.len_chars() > 1).then(digits.str.slice(1)).otherwise(pl.lit("0")),
            pl.lit("E"),
            (whole.str.len_chars() - 1).cast(pl.Utf8),
        )
    ).to_series()
