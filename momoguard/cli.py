"""The `momoguard` command line: one entry point for the broker, data, training, scoring and replay."""

from __future__ import annotations

import logging
import sys

import typer
from pydantic import ValidationError

from benchmarks import cli as bench_cli
from core.errors import MomoGuardError
from feedback import cli as feedback_cli
from kafka_ops import cli as kafka_cli
from paysim import cli as replay_cli
from replay import load_test
from stream_app import cli as stream_cli
from stream_app import lists_cli
from training import cli as training_cli

app = typer.Typer(
    name="momoguard",
    help="MoMo Guard: real-time fraud scoring for mobile-money transactions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: wraps at any width and when piped, where Rich's boxes cut option names short.
    rich_markup_mode=None,
)

# Each package owns its commands (heavy imports stay inside the command functions, so --help is fast).
# The short help of each fits the command list whole at 60 columns (click cuts a longer one with "...").
app.add_typer(kafka_cli.kafka_app, name="kafka", short_help="Run the local Kafka broker (KRaft, loopback).")
app.add_typer(kafka_cli.topics_app, name="topics", short_help="Create MoMo Guard's Kafka topics.")
app.add_typer(kafka_cli.offsets_app, name="offsets", short_help="Show or move the scorer's offsets.")
app.command("train", short_help="Train a model; promote it if it is better.")(training_cli.train)
app.command("evaluate", short_help="Score labelled PaySim files; JSON metrics.")(training_cli.evaluate)
app.add_typer(training_cli.models_app, name="models", short_help="List, promote, roll back fraud models.")
app.command("serve", short_help="Score transactions, write verdicts.")(stream_cli.serve)
app.add_typer(lists_cli.lists_app, name="lists", short_help="Block, allow or review accounts now.")
app.command("generate", short_help="Generate a PaySim month; check fidelity.")(replay_cli.generate)
app.command("replay", short_help="Load test: publish, measure the verdicts.")(load_test.replay)
app.command("bench", short_help="Benchmark scorer, latency, model, generator.")(bench_cli.bench)
app.command("log-sink", short_help="Write scored transactions, labels to Parquet.")(feedback_cli.log_sink)
app.command("label", short_help="Label transactions fraud or genuine.")(feedback_cli.label)


@app.command("demo", short_help="Broker, model, scorer and a replay: the demo.")
def demo(
    rows: int = typer.Option(50_000, min=100, help="Transactions to replay."),
    rate: float = typer.Option(1000.0, min=1, help="Steady offered rate, transactions per second."),
    train_rows: int | None = typer.Option(
        None, min=10_000, help="Generated rows for the first model, if none (default: make train's)."
    ),
    stop: bool = typer.Option(False, "--down", help="Stop the scorer and the broker the demo started."),
) -> None:
    """The main job end to end: broker, champion (trained if missing), scorer, a replay with its summary."""
    from core.settings import Settings
    from momoguard import demo as main_job

    settings = Settings()
    if stop:
        main_job.down(settings)
        return
    main_job.run(settings, rows, rate, ["--rows", str(train_rows)] if train_rows else [])


@app.command("config", short_help="Print the settings in force.")
def config(markdown: bool = typer.Option(False, help="Print the table of all settings instead.")) -> None:
    """Print the settings in force (secrets masked)."""
    from core.settings import Settings
    from core.settings_table import markdown_table

    if markdown:
        print(markdown_table())
        return
    for name, value in Settings().public_dump().items():
        print(f"{name} = {value}")


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "settings"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"invalid setting {where}: {first['msg']}{more}"


def _say(line: str) -> None:
    # One write for the whole line: `print` writes the text and the newline separately, so the workers of
    # `serve --workers N`, which share one stderr, could join their lines into one.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def main() -> None:
    """Console-script entry: run the CLI, turning expected failures into one line and an exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # Without standalone mode click returns the code of a `typer.Exit` (or a command's `ctx.exit`) instead
        # of exiting with it; dropping it would make every such failure exit 0.
        code = app(standalone_mode=False)
    except typer.TyperException as error:  # bad arguments: the usage line and a one-line message
        show = getattr(error, "show", None)
        if show is not None:
            show()
        else:
            _say(f"error: {error}")
        sys.exit(getattr(error, "exit_code", 2))
    except typer.Abort:
        _say("aborted")
        sys.exit(130)
    except MomoGuardError as error:
        _say(f"error: {error}")
        sys.exit(error.exit_code)
    except ValidationError as error:
        _say(f"error: {_one_line(error)}")
        sys.exit(2)
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
