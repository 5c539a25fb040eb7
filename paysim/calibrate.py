"""Derive the generator's calibration table from PaySim v1's parameter files and the real Kaggle samples.

Run: python -m paysim.calibrate --params <params-v1 dir> [--params-v2 <params-v2 dir>] [--samples <samples dir>]
[--out paysim/calibration.json] (--check compares instead of writing; --params-v2 defaults to the folder
`params-v2` beside --params). PaySim v2's client profiles give only the opt-in repeat-client mode's figures.
The parameter tables are GPL-3.0 and stay outside the repository; the test suite checks the figures fitted on the
samples alone, from the copies in tests/fixtures/paysim.

The table holds figures computed here, not the source files: per hour of day the type mix and the amount
mean and spread of each type; a per-step volume profile; per-day amount factors; quantiles of the initial
balance; chain-length distributions from the repetition buckets. Where the Kaggle data departs from the
tables (see docs/GENERATOR.md), a correction is fitted on the shared samples and recorded as such.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import gamma, kstwobign

from core.errors import DataError, MomoGuardError
from paysim.calibration import amount_moments
from paysim.facts import chain_runs, ks_statistic
from paysim.fidelity import load_samples
from paysim.kaggle import (
    KAGGLE_FRAUD,
    KAGGLE_ROWS,
    KAGGLE_STEPS,
    KAGGLE_WHOLE_BALANCE_SHARE,
    SAMPLE_FILES,
    SAMPLES_DIR,
    TRANSFER_LIMIT,
)
from schemas.transaction import TX_TYPES

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path(__file__).with_name("calibration.json")
AGGREGATE_FILE = "AggregateTransaction7386.csv"
BALANCE_FILE = "initialBalanceClients7386.csv"
REPETITION_FILE = "transferFreq4Mod.csv"
# PaySim v2: per type, how many times a client does it in a month (buckets of counts, with their frequency).
PROFILES_FILE = "clientsProfiles.csv"

# The aggregate table's step 2 is day 1, hour 1; Kaggle's step 1 is the first hour with data, so Kaggle step
# s reads aggregate step s + 1 and its hour of day is s % 24 (the convention feature code uses).
STEP_OFFSET = 1
# A month of the profile: 31 days of 24 steps (the Kaggle month ends at 743; the last day has no volume).
PERIOD = 744
# Kaggle was generated at 1/4 of the operator's volume: repeated actions scale the same way (PaySim
# multiplies a client's repetition count by the multiplier and truncates).
REPETITION_MULTIPLIER = 0.25
# PaySim drops repetitions that do not fit the step's capacity; no real chain in the samples exceeds 169.
MAX_CHAIN = 200
# A few hours hold a single transaction (spread 0); no hour's amounts are that regular.
MIN_CV = 0.1
# Pseudo-chains of the repetition-bucket prior mixed into the chain lengths seen in the samples.
PRIOR_CHAINS = 20
# Chain lengths are drawn uniformly within these segments (first length of each; the last ends at MAX_CHAIN).
LENGTH_SEGMENTS = (1, 2, 3, 5, 10, 30, 80)
# PaySim's checkBalanceDropping: a transfer is flagged (and moves nothing) when the account's balance has
# dropped by more than 2.5 transfer limits from its high-water mark.
FLAG_DROP_LIMITS = 2.5

# The Kaggle correction of amounts is fitted on the real rows of these steps (step 1 is held out), by grid.
AMOUNT_FIT_STEPS = (45, 95)
AMOUNT_SCALE_GRID = np.round(np.arange(0.5, 1.5001, 0.025), 3)
AMOUNT_SPREAD_GRID = np.round(np.arange(0.5, 1.5001, 0.05), 2)
# Median of the Kolmogorov distribution: sqrt(n) x KS distance of n draws from the true model.
KS_NULL_MEDIAN = float(kstwobign.median())

# Destinations are clients who acted before. A client's first action picks one uniformly (PaySim's
# getRandomClient()); repetitions and DEBITs pick one holding at least the amount (getRandomClient(amount)
# redraws until the balance covers it). These types pick uniformly on a chain's first row:
UNIFORM_FIRST = ("CASH_IN", "CASH_OUT", "TRANSFER")
# Share of clients who, after acting, join the accounts that receive money. Tuned on the samples: it sets
# how much money each account accumulates (genuine CASH_OUT/TRANSFER destinations hold a median of about
# 0.6-1.0 million) and how often a uniformly picked account is empty (docs/GENERATOR.md).
ACCOUNT_SHARE = 0.22
# Candidates drawn per covering pick (the richest wins if none covers the amount).
DESTINATION_CANDIDATES = 8


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: derive the table and write it as JSON, or check the shipped one against it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, required=True, help="folder with PaySim v1 parameter files")
    parser.add_argument(
        "--params-v2", type=Path, default=None, help="folder with PaySim v2 parameter files (default: beside --params)"
    )
    parser.add_argument(
        "--samples", type=Path, default=SAMPLES_DIR, help="folder with the Kaggle sample CSVs (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--check", action="store_true", help="compare with --out instead of writing it; 1 if it differs"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params_v2 = args.params_v2 or args.params.parent / "params-v2"
        table = json.loads(json.dumps(derive(args.params, args.samples, params_v2)))
    except MomoGuardError as error:
        parser.exit(1, f"error: {error}\n")
    if args.check:
        shipped = json.loads(args.out.read_text())
        differ = sorted(k for k in table.keys() | shipped.keys() if table.get(k) != shipped.get(k))
        if differ:
            parser.exit(1, f"error: {args.out} differs from what the tables derive in: {', '.join(differ)}\n")
        logger.info("%s is what the tables derive", args.out)
        return
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    logger.info("wrote %s", args.out)


def derive(params_dir: Path, samples_dir: Path, params_v2_dir: Path) -> dict[str, Any]:
    """The whole calibration table as a JSON-ready dict."""
    aggregate = _read_aggregate(params_dir / AGGREGATE_FILE)
    samples = load_samples(samples_dir)
    volume, mix = _volume(aggregate)
    amount = _amounts(aggregate)
    for tx_type, fit in _kaggle_amount_fit(samples, amount).items():
        amount[tx_type].update(fit)
    chains = _chain_lengths(params_dir / REPETITION_FILE, samples)
    start = _start_balance(params_dir / BALANCE_FILE, samples)
    chunks = _chunks_per_takeover(samples)
    aftermath = _aftermath_share(samples, chunks)
    return {
        "version": 1,
        "sources": {
            **{name: _sha256(params_dir / name) for name in (AGGREGATE_FILE, BALANCE_FILE, REPETITION_FILE)},
            **{name: _sha256(samples_dir / name) for name in SAMPLE_FILES},
            f"v2/{PROFILES_FILE}": _sha256(params_v2_dir / PROFILES_FILE),
        },
        "kaggle": {
            "steps": KAGGLE_STEPS,
            "genuine_rows": {t: KAGGLE_ROWS[t] - KAGGLE_FRAUD.get(t, 0) for t in TX_TYPES},
            "fraud_rows": sum(KAGGLE_FRAUD.values()),
            "whole_balance_share": KAGGLE_WHOLE_BALANCE_SHARE,
        },
        "period": PERIOD,
        "step_volume": _rounded(volume, 6),
        "type_mix": {t: _rounded(mix[t], 6) for t in TX_TYPES},
        "amount": amount,
        "chain_length": chains,
        "start_balance": start,
        "destinations": {
            "uniform_first": list(UNIFORM_FIRST),
            "candidates": DESTINATION_CANDIDATES,
            "account_share": ACCOUNT_SHARE,
        },
        "fraud": {
            "transfer_limit": TRANSFER_LIMIT,
            "flag_drop_limits": FLAG_DROP_LIMITS,
            "chunks_per_takeover": round(chunks, 4),
            "aftermath_share": aftermath,
            "takeovers_per_step": _takeovers_per_step(chunks, aftermath),
        },
        "repeat_clients": {"share": _repeat_shares(params_v2_dir / PROFILES_FILE, KAGGLE_STEPS)},
    }


def _repeat_shares(path: Path, steps: int) -> dict[str, float]:
    """Per type, the share of a month's chains made by a client who has acted before: 1 - 1 / E[acts per client].

    A bucket of PaySim v2's profiles counts as its middle, at most one act per hour of the month. Used only by
    the opt-in `--repeat-clients` mode (docs/GENERATOR.md); Kaggle's v1 month has no repeat originators.
    """
    if not path.is_file():
        raise DataError(f"no {path.name} in {path.parent} (PaySim v2's parameter files): give --params-v2")
    profiles = pl.read_csv(path).filter(pl.col("action").is_in(TX_TYPES))
    acts = profiles.with_columns(
        middle=pl.min_horizontal((pl.col("minCount") + pl.col("maxCount")) / 2, pl.lit(float(steps)))
    )
    per_type = acts.group_by("action").agg(mean=(pl.col("middle") * pl.col("freq")).sum() / pl.col("freq").sum())
    means = dict(per_type.select("action", "mean").iter_rows())
    missing = [t for t in TX_TYPES if t not in means]
    if missing:
        raise DataError(f"{path.name} has no profile for {', '.join(missing)}")
    return {t: round(1.0 - 1.0 / max(float(means[t]), 1.0), 4) for t in TX_TYPES}


def _read_aggregate(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    frame = pl.read_csv(path)
    frame = frame.filter(pl.col("type").is_in(TX_TYPES) & (pl.col("tcount") > 0))
    # Kaggle step (see STEP_OFFSET), 0-based day of the Kaggle month, hour of day.
    return frame.with_columns(kstep=pl.col("step") - STEP_OFFSET).with_columns(
        day=pl.col("kstep") // 24, hour=pl.col("kstep") % 24
    )


def _volume(aggregate: pl.DataFrame) -> tuple[list[float], dict[str, list[float]]]:
    """Share of the month's transactions in each step, and the type mix of each hour of day."""
    per_step = aggregate.group_by("kstep").agg(pl.col("tcount").sum())
    volume = np.zeros(PERIOD)
    volume[per_step["kstep"].to_numpy()] = per_step["tcount"].to_numpy()
    volume /= volume.sum()
    per_hour = aggregate.group_by("type", "hour").agg(pl.col("tcount").sum())
    counts = {t: np.zeros(24) for t in TX_TYPES}
    for tx_type, hour, count in per_hour.iter_rows():
        counts[tx_type][hour] = count
    total = sum(counts.values())
    mix = {t: (counts[t] / total).tolist() for t in TX_TYPES}
    return volume.tolist(), mix


def _amounts(aggregate: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per type: amount mean and coefficient of variation by hour of day, and a mean factor per day."""
    result: dict[str, dict[str, Any]] = {}
    days = PERIOD // 24
    for tx_type in TX_TYPES:
        rows = aggregate.filter(pl.col("type") == tx_type).with_columns(cv=pl.col("tstd") / pl.col("tavg"))
        # Spread of an hour's amounts: the typical within-hour spread (median across days resists the few
        # days inflated by outliers) combined with how much the hour's mean moves from day to day. PaySim draws
        # a repeated action's amount from the figures of another day's record, so Kaggle's amounts carry both.
        hourly = (
            rows.group_by("hour")
            .agg(
                mean=pl.col("tsum").sum() / pl.col("tcount").sum(),
                within=pl.col("cv").median(),
                between=pl.col("tavg").std(ddof=0).fill_null(0.0) / pl.col("tavg").mean(),
            )
            .with_columns(cv=(pl.col("within") ** 2 + pl.col("between") ** 2).sqrt())
        )
        mean, cv = np.full(24, np.nan), np.full(24, np.nan)
        mean[hourly["hour"].to_numpy()] = hourly["mean"].to_numpy()
        cv[hourly["hour"].to_numpy()] = hourly["cv"].to_numpy()
        # Hours without data (none in practice) borrow the type's overall figures.
        overall_mean = float(rows["tsum"].sum()) / float(rows["tcount"].sum())
        mean = np.where(np.isnan(mean), overall_mean, mean)
        cv = np.where(np.isnan(cv), float(np.nanmedian(rows["cv"].to_numpy())), np.maximum(cv, MIN_CV))
        daily = (
            rows.with_columns(expected=rows["tcount"].to_numpy() * mean[rows["hour"].to_numpy()])
            .group_by("day")
            .agg(factor=pl.col("tsum").sum() / pl.col("expected").sum())
        )
        factor = np.ones(days)
        factor[daily["day"].to_numpy()] = daily["factor"].to_numpy()
        result[tx_type] = {
            "hour_mean": _rounded(mean.tolist(), 6),
            "hour_cv": _rounded(cv.tolist(), 4),
            "day_factor": _rounded(factor.tolist(), 4),
            "kaggle_scale": 1.0,
            "kaggle_spread": 1.0,
        }
    return result


def _kaggle_amount_fit(samples: pl.DataFrame, amount: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per type, a mean and a spread factor that bring the table's amounts to the real Kaggle rows.

    Fitted on the real genuine rows of steps 45-95 (the fidelity report's window), each compared with the
    model at its own step: the pair of factors with the smallest KS distance on a grid. The pair is kept only
    where it beats the table by more than a typical sampling fluctuation for that many rows (the median KS
    distance between a true model and n draws from it); otherwise the table stands. Step 1 is left out of
    the fit and reported beside it as a held-out check. What the fit finds (docs/GENERATOR.md): the Kaggle
    PAYMENT amounts sit about a quarter below the operator's table, and the DEBIT amounts are tighter than
    the table's spread, which rare very large debits inflate.
    """
    genuine = samples.filter(pl.col("isFraud") == 0)
    fitted: dict[str, dict[str, Any]] = {}
    for tx_type in TX_TYPES:
        rows = genuine.filter(pl.col("type") == tx_type)
        window = rows.filter(pl.col("step").is_between(*AMOUNT_FIT_STEPS))
        held_out = rows.filter(pl.col("step") < AMOUNT_FIT_STEPS[0])
        table = amount[tx_type]
        base = _model_ks(window, table, 1.0, 1.0)
        grid = [(float(a), float(b)) for a in AMOUNT_SCALE_GRID for b in AMOUNT_SPREAD_GRID]
        scores = [_model_ks(window, table, a, b) for a, b in grid]
        best = int(np.argmin(scores))
        noise = KS_NULL_MEDIAN / np.sqrt(max(window.height, 1))
        keep = window.height > 0 and base - scores[best] > noise
        scale, spread = grid[best] if keep else (1.0, 1.0)
        fitted[tx_type] = {
            "kaggle_scale": round(scale, 4),
            "kaggle_spread": round(spread, 4),
            "kaggle_fit": {
                "rows": window.height,
                "ks_table": round(base, 4),
                "ks_fitted": round(scores[best] if keep else base, 4),
                "noise": round(float(noise), 4),
                "held_out_rows": held_out.height,
                "held_out_ks_table": round(_model_ks(held_out, table, 1.0, 1.0), 4),
                "held_out_ks_fitted": round(_model_ks(held_out, table, scale, spread), 4),
            },
        }
        logger.info("%s amounts: scale %.3f spread %.2f %s", tx_type, scale, spread, fitted[tx_type]["kaggle_fit"])
    return fitted


def _model_ks(frame: pl.DataFrame, table: dict[str, Any], scale: float, spread: float) -> float:
    """KS distance between real amounts and the Gamma model at each row's own step (mixture over steps)."""
    if frame.height == 0:
        return float("nan")
    steps, counts = np.unique(frame["step"].to_numpy(), return_counts=True)
    mean, cv = amount_moments(
        np.asarray(table["hour_mean"]), np.asarray(table["hour_cv"]), np.asarray(table["day_factor"]), steps, PERIOD
    )
    shape = 1.0 / (cv * spread) ** 2
    real = np.sort(frame["amount"].to_numpy())
    weights = counts / counts.sum()
    model = (weights[:, None] * gamma.cdf(real[None, :], shape[:, None], scale=(mean * scale / shape)[:, None])).sum(0)
    # One-sample KS distance: the empirical CDF just after and just before each sorted value against the model.
    n = real.size
    return float(max((np.arange(1, n + 1) / n - model).max(), (model - np.arange(n) / n).max()))


def _chain_lengths(path: Path, samples: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per type: the distribution of a client's chain length (1 + repetitions in the same step).

    The repetition buckets (transferFreq4Mod, scaled by the Kaggle multiplier) are the prior; the chains of
    the samples are the data. With hundreds of sampled chains per type the data dominates: Kaggle shows more
    long CASH_OUT and TRANSFER chains and fewer repeating CASH_IN clients than the buckets predict (PaySim
    caps repetitions by the capacity left in later steps). Lengths are uniform within LENGTH_SEGMENTS.
    """
    buckets = pl.read_csv(path, has_header=False, skip_rows=1, new_columns=["type", "low", "high", "avg", "std", "p"])
    runs = chain_runs(samples)
    edges = np.array([*LENGTH_SEGMENTS, MAX_CHAIN + 1])
    result: dict[str, dict[str, Any]] = {}
    for tx_type in TX_TYPES:
        prior = np.zeros(MAX_CHAIN + 1)
        for low, high, p in buckets.filter(pl.col("type") == tx_type).select("low", "high", "p").iter_rows():
            # PaySim draws low + |nextInt % (high - low)|: uniform on [low, high - 1], or low when equal.
            n = np.arange(low, max(high, low + 1))
            lengths = np.minimum(1 + np.floor(n * REPETITION_MULTIPLIER).astype(int), MAX_CHAIN)
            np.add.at(prior, lengths, p / n.size)
        prior /= prior.sum()
        seen = np.minimum(runs.filter(pl.col("type") == tx_type)["length"].to_numpy(), MAX_CHAIN)
        counts = np.histogram(seen, bins=edges)[0]
        prior_mass = np.array([prior[a:b].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)])
        weights = (counts + PRIOR_CHAINS * prior_mass) / (counts.sum() + PRIOR_CHAINS)
        result[tx_type] = {
            "segments": [[int(a), int(b - 1)] for a, b in zip(edges[:-1], edges[1:], strict=True)],
            "probabilities": _rounded(weights.tolist(), 6),
            "sampled_chains": int(seen.size),
        }
        logger.info("%s chains: %s", tx_type, np.round(weights, 3))
    return result


def _start_balance(path: Path, samples: pl.DataFrame) -> dict[str, Any]:
    """Quantiles of a client's first balance: the histogram's non-empty bins, scaled to the Kaggle chains.

    The histogram puts 67 % of clients below 100, yet only ~5 % of the sampled Kaggle chains start there
    (nearly all of those at exactly 0); above 100 the Kaggle starts follow the histogram's shape at about 0.6
    of its scale. Both figures are fitted on the samples' chain starts.
    """
    hist = pl.read_csv(path)
    low = hist["range_start"].to_numpy().astype(float)
    high = hist["range_end"].to_numpy().astype(float)
    weight = hist["percentage"].to_numpy().astype(float)
    weight[low < 100] = 0.0
    cdf_knots = np.concatenate([[0.0], np.cumsum(weight) / weight.sum()])
    edges = np.concatenate([[low[0]], high])
    probs = np.linspace(0, 1, 201)
    base = np.interp(probs, cdf_knots, edges)

    starts = chain_runs(samples)["first_balance"].to_numpy()
    zero_share = float((starts == 0).mean())
    real = starts[starts >= 100]
    draws = np.interp(np.random.default_rng(0).random(200_000), probs, base)
    scales = np.round(np.arange(0.30, 1.01, 0.01), 2)
    fits = [ks_statistic(real, draws * s) for s in scales]
    scale = float(scales[int(np.argmin(fits))])
    logger.info("start balance: %.3f of chains start at 0; scale %.2f (KS %.3f)", zero_share, scale, min(fits))
    return {
        "zero_share": round(zero_share, 4),
        "histogram_scale": scale,
        "quantiles": _rounded((base * scale).tolist(), 6),
    }


def _chunks_per_takeover(samples: pl.DataFrame) -> float:
    """Mean TRANSFER rows per takeover in the samples: a takeover's last chunk empties the balance."""
    transfers = samples.filter((pl.col("isFraud") == 1) & (pl.col("type") == "TRANSFER"))
    last = transfers.filter((pl.col("amount") - pl.col("oldbalanceOrg")).abs() <= 0.01).height
    return transfers.height / max(last, 1)


def _aftermath_share(samples: pl.DataFrame, chunks: float) -> float:
    """Takeovers followed by a victim's own TRANSFER/CASH_OUT (labelled fraud, from the emptied account).

    Those rows are the frauds from an empty account (`oldbalanceOrg` 0, amount > 0): 2 of the samples' 633
    fraud rows (0.3 %, the share the Kaggle data shows as a whole). A takeover makes 2 x chunks rows
    before its aftermath, so a share z of such rows needs z x 2 x chunks / (1 - z) aftermaths per takeover.
    """
    fraud = samples.filter(pl.col("isFraud") == 1)
    empty = fraud.filter((pl.col("oldbalanceOrg") == 0) & (pl.col("amount") > 0)).height / max(fraud.height, 1)
    return round(empty * 2 * chunks / (1 - empty), 4)


def _takeovers_per_step(chunks: float, aftermath: float) -> float:
    """Takeovers per step at scale 1 so that a month holds Kaggle's number of fraud rows."""
    return round(sum(KAGGLE_FRAUD.values()) / KAGGLE_STEPS / (2 * chunks + aftermath), 4)


def _rounded(values: list[float], digits: int) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in values]


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    main()
