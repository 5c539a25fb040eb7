"""The one settings object of a MoMo Guard process, read from MOMOGUARD_* environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUN_DIR = PROJECT_ROOT / ".run"

# Seeds reach LightGBM, which takes a C int.
MAX_SEED = 2**31 - 1

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    """Everything configurable, in one frozen object built once at the entry point and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="MOMOGUARD_", env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # --- Kafka -------------------------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers (host:port, ...).")
    kafka_security_protocol: SecurityProtocol = Field("PLAINTEXT", description="Kafka security protocol.")
    kafka_sasl_mechanism: SaslMechanism | None = Field(None, description="SASL mechanism, with SASL_*.")
    kafka_sasl_username: str | None = Field(None, description="SASL username.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    kafka_ssl_cafile: Path | None = Field(None, description="CA certificate file (PEM) for SSL.")
    topic_transactions: str = Field("transactions", description="Topic the operator publishes to.")
    topic_verdicts: str = Field("verdicts", description="Topic verdicts are written to.")
    topic_dlq: str = Field("transactions.dlq", description="Dead-letter topic for malformed messages.")
    transactions_partitions: int = Field(8, ge=1, description="Partitions of the transactions topic.")
    verdicts_partitions: int = Field(8, ge=1, description="Partitions of the verdicts topic.")
    dlq_partitions: int = Field(1, ge=1, description="Partitions of the dead-letter topic.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of created topics.")

    # --- Local state --------------------------------------------------------------------------------
    run_dir: Path = Field(DEFAULT_RUN_DIR, description="Folder for the local broker, registry and caches.")

    # --- MLflow registry ----------------------------------------------------------------------------
    mlflow_tracking_uri: str = Field("", description="MLflow tracking URI (default: a SQLite store in the run folder).")
    model_name: str = Field("momoguard-fraud", description="Registered model name.")

    # --- Training -----------------------------------------------------------------------------------
    experiment_name: str = Field("momoguard-training", description="MLflow experiment of training runs.")
    feature_set: Literal["pre_settlement", "post_settlement", "account_state"] = Field(
        "pre_settlement",
        description="Features to train on: pre_settlement (known before settling), post_settlement (opt-in), or "
        "account_state (opt-in: pre_settlement plus account memory; a scorer with it keeps the account tables).",
    )
    compare_feature_sets: bool = Field(
        True, description="Also fit the other feature set once and report both in the model card."
    )
    train_rows: int = Field(1_000_000, ge=1, description="About how many rows to generate when no CSV is given.")
    train_steps: int = Field(743, ge=3, description="How many hours (steps) of data to generate.")
    train_seed: int = Field(
        0, ge=0, le=MAX_SEED, description="Seed of the data generator and the hyperparameter search."
    )
    train_repeat_clients: bool = Field(
        False,
        description="Generate training data with repeat clients (`momoguard generate --repeat-clients`): accounts "
        "that act again, mules that cash out; a deviation from Kaggle that gives account_state history to read.",
    )
    max_skipped_rows: int = Field(
        0, ge=0, description="Malformed rows data may hold before train, evaluate or replay fail (all are reported)."
    )
    validation_fraction: float = Field(
        0.15, gt=0, lt=1, description="Share of rows, in whole steps just before the test window, for validation."
    )
    test_fraction: float = Field(0.20, gt=0, lt=1, description="Share of rows, in whole last steps, held out as test.")
    tuning_trials: int = Field(12, ge=1, description="Hyperparameter trials (the search stops earlier on budget).")
    tuning_time_budget_s: float = Field(120.0, gt=0, description="Seconds after which no new trial starts.")
    train_threads: int = Field(2, ge=1, description="LightGBM threads.")
    train_genuine_fraction: float = Field(
        0.25, gt=0, le=1, description="Share of genuine train rows kept (weighted up) to speed up training."
    )
    threshold_policy: Literal["best_f1", "min_precision", "max_false_block_rate"] = Field(
        "best_f1", description="How the block threshold is chosen on the validation window."
    )
    threshold_target: float = Field(
        0.9, ge=0, le=1, description="Target of min_precision (precision) or max_false_block_rate (rate)."
    )
    promotion_auprc_margin: float = Field(
        0.002, ge=0, description="A challenger may trail the champion's test AUPRC by at most this."
    )
    promotion_amount_recall_margin: float = Field(
        0.01, ge=0, description="A challenger may trail the champion's fraud-amount recall by at most this."
    )
    promotion_auprc_floor: float = Field(
        0.9, ge=0, le=1, description="Test AUPRC the first model needs to become champion."
    )
    retrain_cron: str = Field("0 3 * * 0", description="Cron schedule of the served retrain flow (UTC).")

    # --- Scorer ------------------------------------------------------------------------------------
    consumer_group: str = Field("momoguard-scorer", description="Consumer group (Faust app id) of the scorer.")
    max_batch: int = Field(
        1000, ge=1, le=100_000, description="Most transactions in one fetch, scored as one batch (no wait to fill it)."
    )
    max_fetch_bytes: int = Field(
        1_048_576, ge=65_536, le=64 * 1_048_576, description="Most bytes one fetch reads from one partition."
    )
    in_flight_window: int = Field(
        20_000,
        ge=1,
        le=1_000_000,
        description="Most transactions read and not yet committed per worker: the most scored twice after a crash.",
    )
    account_tables: bool = Field(
        False,
        description="Keep the per-account tables (docs/ACCOUNT_STATE.md), so that account_state models can be "
        "served; on whenever MOMOGUARD_FEATURE_SET=account_state.",
    )
    topic_credits: str = Field(
        "transactions.credits",
        description="Repartition topic bringing each credit to the receiving account's partition (account tables).",
    )
    state_store: Literal["rocksdb://", "memory://"] = Field(
        "rocksdb://", description="Store of the account tables: RocksDB on disk (durable), or memory."
    )
    table_standby_replicas: int = Field(
        0, ge=0, le=8, description="Standby copies of each account table partition kept by other workers."
    )
    max_message_bytes: int = Field(
        16_384,
        ge=256,
        le=512_000,
        description="Messages larger than this (value, key and headers) go to the dead-letter topic.",
    )
    dlq_max_bytes: int = Field(
        65_536,
        ge=4096,
        le=900_000,
        description="Largest dead letter; a bigger original keeps a prefix and headers saying so.",
    )
    producer_linger_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="librdkafka `linger.ms` of the scorer's producer: 0 sends each fetch's verdicts at once "
        "(batches still form while requests are in flight); each 1 ms adds ~1 ms to every verdict.",
    )
    produce_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description="Tries for a record the broker refuses (too large, invalid) before its dead letter.",
    )
    stall_timeout_s: float = Field(
        30.0, gt=0, description="/health fails when work waits and nothing progressed for this long (s)."
    )
    shutdown_timeout_s: float = Field(
        20.0, gt=0, le=600, description="SIGTERM exits within this, broker or not; undelivered work is redone (s)."
    )
    recreate_missing_topics: bool = Field(
        False, description="Recreate a deleted verdicts or dead-letter topic instead of waiting for it."
    )
    session_timeout_s: float = Field(
        10.0, ge=6, le=300, description="A worker silent this long loses its partitions to the others (s)."
    )
    reload_interval_s: float = Field(10.0, gt=0, description="How often the scorer polls the champion alias.")
    registry_retry_s: float = Field(
        60.0, ge=0, description="How long a starting scorer retries an unreachable registry."
    )
    web_host: str = Field("127.0.0.1", description="Address the scorer's web endpoints bind to.")
    web_port: int = Field(6066, ge=1, le=65535, description="Web port of the first worker (+1 per worker).")
    reasons_per_verdict: int = Field(3, ge=0, le=10, description="Top features named in each explained verdict.")
    explain_min_score: float = Field(
        0.01, ge=0, le=1, description="Verdicts scoring at least this carry reasons (SHAP costs ~0.5 ms a row)."
    )

    # --- The fraud desk's levers: the review tier, the lists, reason texts, the verdict deadline ----------------
    # Training picks each version's review threshold; the scorer gives `review` only with review_tier on.
    review_policy: Literal["none", "min_recall", "max_review_rate"] = Field(
        "min_recall", description="How training picks a version's review threshold (none: no review threshold)."
    )
    review_target: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="Target of min_recall (fraud reviewed or blocked) or max_review_rate (share sent to review).",
    )
    review_tier: bool = Field(
        False, description="Give `review` to scores between the version's review and block thresholds."
    )
    topic_lists: str = Field("momoguard.lists", description="Compacted topic of the block/allow/review lists.")
    list_account_pattern: str = Field(
        "[CM][0-9]{1,19}", description="Account ids `momoguard lists` accepts (a regular expression, whole id)."
    )
    lists_load_timeout_s: float = Field(
        60.0, gt=0, description="How long a starting worker may take to read the lists before it gives up (s)."
    )
    reason_language: str = Field(
        "en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", description="Language of the reason texts in verdicts."
    )
    reason_catalog_dir: Path | None = Field(
        None, description="Folder of extra reason catalogs (<language>.json), searched before the shipped ones."
    )
    verdict_deadline_ms: int = Field(
        500, ge=1, le=3_600_000, description="A verdict made later than event time + this is marked late (ms)."
    )

    # --- Closed loop: the scored-transaction log, labels, the shadow challenger, drift ---------------
    topic_scored: str = Field(
        "transactions.scored", description="Topic of scored transactions (features, score, decision) for the log sink."
    )
    topic_labels: str = Field("labels", description="Topic of labels: analysts', chargebacks', customer reports.")
    topic_shadow: str = Field("verdicts.shadow", description="Topic of the challenger's verdicts (never acted on).")
    scored_partitions: int = Field(4, ge=1, description="Partitions of the scored-transactions topic.")
    labels_partitions: int = Field(1, ge=1, description="Partitions of the labels topic.")
    shadow_partitions: int = Field(8, ge=1, description="Partitions of the shadow verdicts topic.")
    scored_log: bool = Field(True, description="The scorer produces every scored transaction to the scored topic.")
    scored_log_linger_ms: int = Field(
        200,
        ge=0,
        le=10_000,
        description="Longest a scored transaction waits to share a scored-topic message with the next ones (ms); "
        "its offset is committed once that message is acknowledged (0: a message per fetch).",
    )
    log_dir: str = Field(
        "",
        description="Folder of the scored-transaction log and the labels: a local path or file:// URL "
        "(default: feedback/ in the run folder).",
    )
    log_sink_group: str = Field("momoguard-log-sink", description="Consumer group of `momoguard log-sink`.")
    log_roll_bytes: int = Field(
        64 * 1_048_576,
        ge=65_536,
        le=4096 * 1_048_576,
        description="The sink closes its files once this many bytes of rows are buffered (its memory bound).",
    )
    log_roll_interval_s: float = Field(
        60.0, gt=0, le=86_400, description="... or once its oldest buffered row waited this long (s)."
    )
    label_delay_s: float = Field(
        7 * 86_400.0,
        ge=0,
        description="Training from the log leaves out rows scored more recently than this (s); older unlabelled "
        "rows count as genuine.",
    )
    log_min_frauds: int = Field(
        50, ge=1, description="Labelled frauds the log needs before the scheduled flow trains on it."
    )
    promotion_requires_shadow: bool = Field(
        False, description="New versions become challenger first; champion only after a live-shadow result."
    )
    shadow_min_frauds: int = Field(
        20, ge=1, description="Labelled frauds the challenger must have shadowed before the live gate decides."
    )
    drift_window_s: float = Field(3600.0, gt=0, le=7 * 86_400, description="Rolling window of the scorer's PSI (s).")
    drift_min_transactions: int = Field(
        1000, ge=1, description="Transactions the window needs before a PSI is exported."
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("list_account_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        return value

    @field_validator("log_dir")
    @classmethod
    def _log_dir_is_local(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if sep and scheme not in ("file", "local"):
            raise ValueError(f"expected a local path or a file:// URL, got {value!r} (scheme {scheme!r})")
        return value

    @model_validator(mode="after")
    def _sizes_fit(self) -> Settings:
        # A dead letter must hold any message the scorer accepts, and the in-flight window one whole fetch.
        if self.dlq_max_bytes < self.max_message_bytes + 4096:
            raise ValueError(
                f"MOMOGUARD_DLQ_MAX_BYTES ({self.dlq_max_bytes}) must exceed MOMOGUARD_MAX_MESSAGE_BYTES "
                f"({self.max_message_bytes}) by 4096 or more, so a dead letter holds any message the scorer accepts"
            )
        if self.in_flight_window < self.max_batch:
            raise ValueError(
                f"MOMOGUARD_IN_FLIGHT_WINDOW ({self.in_flight_window}) must be at least MOMOGUARD_MAX_BATCH "
                f"({self.max_batch}), so one whole fetch fits in it"
            )
        return self

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            if not (self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password):
                raise ValueError("SASL needs MOMOGUARD_KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD to be set")
        return self

    @classmethod
    def overridden(cls, **values: Any) -> Settings:
        """Settings from the environment with a command line's options on top (an option left out is None)."""
        return cls(**{name: value for name, value in values.items() if value is not None})

    @property
    def keeps_account_tables(self) -> bool:
        """Whether the scorer keeps the account tables (and can serve account_state models)."""
        return self.account_tables or self.feature_set == "account_state"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI in force (the SQLite store under the run folder by default)."""
        return self.mlflow_tracking_uri or f"sqlite:///{(self.run_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_location(self) -> str:
        """Where a default local registry keeps its artifacts."""
        return (self.run_dir / "mlartifacts").resolve().as_uri()

    @property
    def feedback_dir(self) -> Path:
        """The folder of the scored-transaction log and the labels (a file:// URL's path, or the run folder's)."""
        if not self.log_dir:
            return (self.run_dir / "feedback").resolve()
        scheme, sep, rest = self.log_dir.partition("://")
        path = rest if sep else self.log_dir
        if sep and scheme == "file":
            from urllib.parse import unquote, urlparse

            path = unquote(urlparse(self.log_dir).path)
        return Path(path).expanduser().resolve()

    def public_dump(self) -> dict[str, Any]:
        """The settings with secrets masked, safe to log or print."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
