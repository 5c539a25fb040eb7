"""docker-compose.yml and the Dockerfile, checked without a Docker engine: files, pins, settings, commands, order."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from core.settings import PROJECT_ROOT, Settings
from momoguard.cli import app as momoguard_cli

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
SETTINGS_VARIABLES = {f"MOMOGUARD_{name.upper()}" for name in Settings.model_fields}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def test_the_stack_has_every_part() -> None:
    parts = {"kafka", "kafka-topics", "mlflow", "prefect", "trainer", "scorer", "replay", "prometheus", "grafana"}
    assert parts <= set(SERVICES)
    assert SERVICES["replay"]["profiles"] == ["replay"], "the load test runs only when asked for"
    assert all("profiles" not in s for name, s in SERVICES.items() if name != "replay")


def test_every_image_is_pinned_and_the_project_image_is_built_from_the_dockerfile() -> None:
    for name, service in SERVICES.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
        if "build" in service:
            assert image == f"momoguard:{VERSION}", f"{name} builds the project image under another name"
            context = PROJECT_ROOT / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file()
    for line in re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE):
        assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", line), f"Dockerfile base image not pinned: {line}"
    assert "apache/kafka:4.1." in SERVICES["kafka"]["image"]


def test_the_dockerfile_installs_from_the_lock_file_and_runs_unprivileged() -> None:
    assert re.search(r"^COPY .*uv\.lock", DOCKERFILE, re.MULTILINE)
    installs = re.findall(r"uv sync[^\n]*", DOCKERFILE)
    assert installs and all("--frozen" in line and "--no-dev" in line for line in installs)
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    # Every folder COPY names is in the build context (not excluded by .dockerignore).
    ignored = {line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()}
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.MULTILINE):
        for source in sources.split():
            assert (PROJECT_ROOT / source).exists(), source
            assert source not in ignored, f"{source} is copied but excluded by .dockerignore"


def test_every_mounted_file_exists() -> None:
    mounted = 0
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts missing {source}"
                mounted += 1
            else:
                assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"
    assert mounted >= 5


def test_every_momoguard_variable_is_a_setting() -> None:
    used: set[str] = set()
    for service in SERVICES.values():
        used |= {key for key in environment(service) if key.startswith("MOMOGUARD_")}
    used |= set(re.findall(r"\b(MOMOGUARD_[A-Z0-9_]+)=", DOCKERFILE))
    used |= set(re.findall(r"\$\{?(MOMOGUARD_[A-Z0-9_]+)", (PROJECT_ROOT / "docker-compose.yml").read_text()))
    assert {"MOMOGUARD_KAFKA_BOOTSTRAP", "MOMOGUARD_MLFLOW_TRACKING_URI", "MOMOGUARD_WEB_HOST"} <= used
    assert used <= SETTINGS_VARIABLES, f"not settings: {used - SETTINGS_VARIABLES}"
    scorer = Settings(**{k.removeprefix("MOMOGUARD_").lower(): v for k, v in environment(SERVICES["scorer"]).items()})
    assert scorer.web_host == "0.0.0.0" and scorer.kafka_bootstrap == "kafka:29092", "the values validate too"


def test_momoguard_commands_parse_with_the_real_cli() -> None:
    group: Any = typer.main.get_command(momoguard_cli)  # Typer's own (vendored) click group
    checked = 0
    for name, service in SERVICES.items():
        argv = command(service)
        if argv[:1] != ["momoguard"]:
            continue
        sub = group.commands.get(argv[1])
        assert sub is not None, f"{name}: no command momoguard {argv[1]}"
        sub.make_context(argv[1], argv[2:])  # raises on an unknown option or a bad value
        checked += 1
    assert checked >= 3
    with pytest.raises(typer.TyperException, match="No such option"):
        group.commands["serve"].make_context("serve", ["--wokers", "2"])
    with pytest.raises(typer.TyperException):
        group.commands["serve"].make_context("serve", ["--workers", "0"])


@pytest.mark.slow  # importing MLflow's CLI and starting Prefect's take tens of seconds
def test_the_mlflow_and_prefect_servers_accept_their_options() -> None:
    from mlflow.cli import cli as mlflow_cli

    argv = command(SERVICES["mlflow"])
    assert argv[:2] == ["mlflow", "server"]
    mlflow_cli.commands["server"].make_context("server", argv[2:])
    argv = command(SERVICES["prefect"])
    assert argv[:3] == ["prefect", "server", "start"]
    prefect = Path(PROJECT_ROOT / ".venv" / "bin" / "prefect")
    shown = subprocess.run([str(prefect), "server", "start", "--help"], capture_output=True, text=True, timeout=120)
    for option in (a for a in argv[3:] if a.startswith("--")):
        assert option in shown.stdout, f"prefect server start has no {option}"


def test_start_order_waits_on_health_and_one_shot_jobs() -> None:
    for name, service in SERVICES.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck for {name}"
            elif condition == "service_completed_successfully":
                assert SERVICES[dependency].get("restart") == "no", f"{dependency} is not a one-shot job"
            else:
                pytest.fail(f"{name} -> {dependency}: wait for health or completion, not {condition}")
    scorer = SERVICES["scorer"]["depends_on"]
    assert scorer["trainer"]["condition"] == "service_completed_successfully", "the scorer needs a champion"
    assert scorer["kafka-topics"]["condition"] == "service_completed_successfully"
    for name in ("kafka", "mlflow", "prefect", "scorer", "prometheus", "grafana"):
        assert "healthcheck" in SERVICES[name], name


def test_prometheus_in_compose_scrapes_every_scorer_worker() -> None:
    argv = command(SERVICES["scorer"])
    workers = int(argv[argv.index("--workers") + 1])
    port = int(environment(SERVICES["scorer"])["MOMOGUARD_WEB_PORT"])
    targets = yaml.safe_load((PROJECT_ROOT / "infra/prometheus/targets-compose/scorer.json").read_text())
    listed = {t for group in targets for t in group["targets"]}
    assert listed == {f"scorer:{port + i}" for i in range(workers)}
    mounts = [str(v) for v in SERVICES["prometheus"]["volumes"]]
    assert "./infra/prometheus/targets-compose:/etc/prometheus/targets:ro" in mounts
    published = SERVICES["scorer"]["ports"][0]
    assert published.endswith(f"{port}-{port + workers - 1}:{port}-{port + workers - 1}")
