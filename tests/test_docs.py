"""The deployment guide (docs/deployment.md) kept true: its Collector configurations are whole
and point at Clew's paths, its commands and settings exist, its worker file loads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
from gunicorn.config import Config as GunicornConfig
from ruamel.yaml import YAML

from clew import pull_cli, receiver, wsgi
from clew.cli import main
from clew.store import retention

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "deployment.md").read_text()
README = (ROOT / "README.md").read_text()

_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    """The guide's fenced code blocks in ``language``, in order."""
    return [body for lang, body in _FENCE.findall(GUIDE) if lang == language]


def collector_configs() -> list[dict]:
    configs = [YAML(typ="safe").load(body) for body in blocks("yaml")]
    return [c for c in configs if isinstance(c, dict) and "pipelines" in c.get("service", {})]


#: The settings of each component type the guide uses, as its configuration schema names them
#: (``config.schema.yaml`` of the component in opentelemetry-collector or -contrib; an exporter's
#: shared HTTP or gRPC client settings, queue and retry included). A key outside them is one the
#: Collector refuses when it loads the file.
_CLIENT = {
    "endpoint", "tls", "headers", "timeout", "compression", "auth", "retry_on_failure",
    "sending_queue",
}  # fmt: skip
KNOWN_KEYS: dict[str, set[str]] = {
    "otlp receiver": {"protocols"},
    "memory_limiter processor": {
        "check_interval",
        "limit_mib",
        "spike_limit_mib",
        "limit_percentage",
        "spike_limit_percentage",
    },
    "resource processor": {"attributes"},
    "probabilistic_sampler processor": {
        "sampling_percentage",
        "hash_seed",
        "mode",
        "fail_closed",
        "sampling_precision",
    },
    "loadbalancing exporter": {
        "routing_key",
        "routing_attributes",
        "protocol",
        "resolver",
        "timeout",
        "retry_on_failure",
        "sending_queue",
    },
    "otlphttp exporter": _CLIENT
    | {"traces_endpoint", "metrics_endpoint", "logs_endpoint", "encoding"},
    "otlp exporter": _CLIENT | {"balancer_name", "keepalive", "write_buffer_size"},
    "servicegraph connector": {
        "latency_histogram_buckets",
        "dimensions",
        "store",
        "cache_loop",
        "store_expiration_loop",
        "virtual_node_peer_attributes",
        "virtual_node_extra_label",
        "metrics_flush_interval",
        "database_name_attributes",
        "exponential_histogram_max_size",
        "metrics_timestamp_offset",
    },
    "spanmetrics connector": {
        "histogram",
        "dimensions",
        "exclude_dimensions",
        "calls_dimensions",
        "aggregation_temporality",
        "namespace",
        "metrics_flush_interval",
        "metrics_expiration",
        "exemplars",
        "events",
        "resource_metrics_key_attributes",
        "resource_metrics_cache_size",
        "aggregation_cardinality_limit",
        "add_resource_attributes",
        "include_instrumentation_scope",
    },
    "health_check extension": {"endpoint", "path", "response_body", "check_collector_pipeline"},
}
SECTIONS = {
    "receivers": "receiver",
    "processors": "processor",
    "exporters": "exporter",
    "connectors": "connector",
    "extensions": "extension",
}


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def test_the_guide_has_both_collector_layers_and_a_diagram():
    assert len(collector_configs()) == 2
    (diagram,) = blocks("mermaid")
    assert diagram.startswith("flowchart")
    for tier in ("embedded", "team", "beyond"):
        assert re.search(rf"^\s*subgraph {tier}\[", diagram, re.MULTILINE), tier


@pytest.mark.parametrize("config", collector_configs(), ids=["layer1", "layer2"])
def test_collector_pipelines_use_only_components_the_file_defines(config):
    pipelines = config["service"]["pipelines"]
    as_exporter: set[str] = set()
    as_receiver: set[str] = set()
    for name, pipeline in pipelines.items():
        assert _type(name) in ("traces", "metrics", "logs"), name
        assert pipeline.get("receivers") and pipeline.get("exporters"), name
        for role in ("receivers", "processors", "exporters"):
            for component in pipeline.get(role, []):
                defined = component in (config.get(role) or {})
                connector = role != "processors" and component in (config.get("connectors") or {})
                assert defined or connector, f"{name}: {component} is not among the {role}"
                if connector:
                    (as_exporter if role == "exporters" else as_receiver).add(component)
    # A connector joins two pipelines: it must end one and start another.
    for connector in config.get("connectors") or {}:
        assert connector in as_exporter and connector in as_receiver, connector
    used = {c for p in pipelines.values() for role in p.values() for c in role}
    for section in ("receivers", "processors", "exporters", "connectors"):
        unused = set(config.get(section) or {}) - used
        assert not unused, f"{section} defined and not used: {unused}"
    assert set(config["service"].get("extensions", [])) == set(config.get("extensions") or {})


@pytest.mark.parametrize("config", collector_configs(), ids=["layer1", "layer2"])
def test_collector_components_have_only_settings_their_schemas_know(config):
    for section, kind in SECTIONS.items():
        for component, settings in (config.get(section) or {}).items():
            known = KNOWN_KEYS.get(f"{_type(component)} {kind}")
            assert known is not None, f"{component}: a {kind} the guide's table does not know"
            unknown = set(settings or {}) - known
            assert not unknown, f"{component}: unknown settings {unknown}"


def test_layer_one_routes_whole_traces_to_layer_two():
    layer1, layer2 = collector_configs()
    balancer = layer1["exporters"]["loadbalancing"]
    assert balancer["routing_key"] == "traceID"
    assert "endpoint" not in balancer["protocol"]["otlp"]  # the resolver gives each one
    (resolver,) = balancer["resolver"].values()  # one resolver in force
    port = int(resolver.get("port") or resolver["hostnames"][0].rsplit(":", 1)[1])
    # Layer 2 listens (OTLP gRPC) where layer 1 sends.
    grpc = layer2["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert int(grpc.rsplit(":", 1)[1]) == port
    assert "loadbalancing" in layer1["service"]["pipelines"]["traces"]["exporters"]


def test_layer_two_sends_clew_its_paths_on_the_receivers_port():
    _, layer2 = collector_configs()
    clew = layer2["exporters"]["otlphttp/clew"]
    metrics, traces = urlsplit(clew["metrics_endpoint"]), urlsplit(clew["traces_endpoint"])
    assert metrics.path == receiver.METRICS_PATH and traces.path == receiver.PATH
    (bind,) = re.findall(r"--bind (\S+) --no-control-socket 'clew\.wsgi:receiver\(\)'", GUIDE)
    assert metrics.port == traces.port == int(bind.rsplit(":", 1)[1])
    assert clew["headers"]["Authorization"].startswith("Bearer ${env:")
    pipelines = layer2["service"]["pipelines"]
    for connector in ("servicegraph", "spanmetrics"):
        assert connector in pipelines["traces"]["exporters"]
        assert connector in pipelines["metrics/clew"]["receivers"]
    assert pipelines["metrics/clew"]["exporters"] == ["otlphttp/clew"]
    assert pipelines["traces/clew"]["exporters"] == ["otlphttp/clew"]
    # Each Collector's series carry its own name, or Clew would take two for one.
    assert "resource/collector" in pipelines["metrics/clew"]["processors"]


def _shell_lines(text: str) -> list[list[str]]:
    """Each command of a shell block as words (comments and continuation lines handled)."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        for part in line.split(" && "):
            command = shlex.split(part, comments=True)
            while command and (command[0] == "export" or re.match(r"\w+=", command[0])):
                command = command[1:]
            if command:
                commands.append(command)
    return commands


def _commands() -> list[list[str]]:
    commands = [c for block in blocks("sh") for c in _shell_lines(block)]
    for block in blocks("ini"):
        commands += [shlex.split(line[len("ExecStart=") :]) for line in block.splitlines()
                     if line.startswith("ExecStart=")]  # fmt: skip
    return commands


def test_every_clew_command_and_option_in_the_guide_exists():
    seen = 0
    for words in _commands():
        if Path(words[0]).name != "clew":
            continue
        seen += 1
        command: click.Command = main
        rest = words[1:]
        while isinstance(command, click.Group):
            assert rest and rest[0] in command.commands, f"no command {' '.join(words)}"
            command, rest = command.commands[rest[0]], rest[1:]
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        for word in rest:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in options, f"{' '.join(words)}: no {word}"
    assert seen >= 10


def test_every_gunicorn_command_in_the_guide_parses_and_names_a_factory():
    seen = 0
    for words in _commands():
        if Path(words[0]).name != "gunicorn":
            continue
        seen += 1
        options = GunicornConfig(prog="gunicorn").parser().parse_args(words[1:])
        (target,) = options.args
        module, _, call = target.partition(":")
        assert module == "clew.wsgi" and call.endswith("()"), target
        assert callable(getattr(wsgi, call[:-2]))
        assert options.worker_class == "gthread" and options.control_socket_disable
    assert seen >= 3


def test_every_clew_setting_the_guide_names_is_documented():
    documented = set(re.findall(r"\bCLEW_[A-Z_]+\b", README))
    # Names a Collector reads from its own environment (${env:...}) are not Clew's.
    collector_side = set(re.findall(r"\$\{env:(\w+)\}", GUIDE))
    named = set(re.findall(r"\bCLEW_[A-Z_]+\b", GUIDE)) - collector_side
    assert named and named <= documented, named - documented


def test_the_worker_file_in_the_guide_loads_with_its_retention(tmp_path):
    (worker_toml,) = blocks("toml")
    path = tmp_path / "worker.toml"
    path.write_text(worker_toml)
    jobs = pull_cli.load_config(path)
    kinds = sorted(type(job).__name__ for job in jobs)
    assert kinds == ["CheckJob", "PullJob", "RetentionJob"]
    (kept,) = [job for job in jobs if isinstance(job, pull_cli.RetentionJob)]
    day = 86_400
    assert kept.horizons == retention.Horizons(raw_s=7 * day, minutes_s=30 * day)


def test_the_readme_links_the_guide():
    assert "(docs/deployment.md)" in README
