"""Config loading: expansion, validation against plugin dataclasses, errors that name file, line and key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agent.config import ensure_state_dir, expand_env, load_config
from agent.errors import ConfigError, ConfigErrors
from agent.plugin import Header, Kind, PluginContext
from agent.registry import Registry
from agent.schema import Duration, opt


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeTailConfig:
    path: list[str] = opt(doc="Globs.")
    rotate_wait: Duration = opt(Duration(5.0), doc="Wait.")


class FakeTail:
    name: ClassVar[str] = "tail"
    config_class: ClassVar[type[Any]] = FakeTailConfig

    def __init__(self, config: FakeTailConfig, ctx: PluginContext) -> None: ...
    def start(self, emit: Any) -> None: ...
    def commit(self, records: Any) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeFormatConfig:
    format: str = opt("<Content>", doc="Format.")


class FakeFormat:
    name: ClassVar[str] = "format"
    config_class: ClassVar[type[Any]] = FakeFormatConfig

    def parse(self, raw: str) -> Header | None:
        return Header(message=raw)


class FakeAuto(FakeFormat):
    name: ClassVar[str] = "auto"


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeWebhookConfig:
    url: str = opt(doc="URL.")
    secret: str = opt("", doc="Secret.", secret=True)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s), got {self.url!r}")


class FakeWebhook:
    name: ClassVar[str] = "webhook"
    config_class: ClassVar[type[Any]] = FakeWebhookConfig

    @staticmethod
    def preflight(config: FakeWebhookConfig) -> list[tuple[str, str]]:
        return [] if config.url.startswith("https") else [("warning:url", "not https")]

    def start(self) -> None: ...
    def deliver(self, alerts: Any) -> Any: ...
    def write_records(self, records: Any) -> None: ...
    def stop(self) -> None: ...


@pytest.fixture
def registry() -> Registry:
    return Registry.from_classes(
        (Kind.INPUT, FakeTail), (Kind.PARSER, FakeFormat), (Kind.PARSER, FakeAuto), (Kind.OUTPUT, FakeWebhook)
    )


def only_error(path: Path, registry: Registry, env: dict[str, str] | None = None) -> ConfigError:
    """The one located error a bad config must be refused with."""
    with pytest.raises(ConfigErrors) as exc:
        load_config(path, registry, env or {})
    (err,) = exc.value.errors
    return err


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "logwarden.yaml"
    p.write_text(text)
    return p


GOOD = """\
service:
  state_dir: ${STATE:-/tmp/lw}
  http: {listen: 127.0.0.1:2020}
pipeline:
  inputs:
    - name: tail
      tag: app
      path: /var/log/app/*.log
      rotate_wait: 10s
      parser: {format: '<Date> <Content>'}
  outputs:
    - name: webhook
      url: ${HOOK_URL}
      secret: ${HOOK_SECRET:?set the webhook secret}
"""


def test_valid_config_builds_typed_sections(tmp_path: Path, registry: Registry) -> None:
    env = {"HOOK_URL": "https://hooks.example/x", "HOOK_SECRET": "abcd1234"}
    cfg = load_config(write(tmp_path, GOOD), registry, env)
    assert cfg.service.state_dir == "/tmp/lw"
    assert cfg.inputs[0].tag == "app"
    assert cfg.inputs[0].config.path == ["/var/log/app/*.log"]
    assert cfg.inputs[0].config.rotate_wait == Duration(10.0)
    assert cfg.inputs[0].parser.name == "format"
    assert cfg.inputs[0].parser.config.format == "<Date> <Content>"
    assert cfg.outputs[0].config.secret == "abcd1234"
    assert cfg.outputs[0].stream == "alerts"
    assert cfg.warnings == []


def test_unset_required_variable_names_line_and_message(tmp_path: Path, registry: Registry) -> None:
    err = only_error(write(tmp_path, GOOD), registry, {"HOOK_URL": "https://h/x"})
    assert err.line == 14
    assert err.key_path == "pipeline.outputs[0].secret"
    assert "HOOK_SECRET is not set: set the webhook secret" in err.message


def test_unset_plain_variable_warns_and_expands_empty() -> None:
    text, errors, warnings = expand_env("a${NOPE}b$$c${X:-d}", {})
    assert (text, errors) == ("ab$cd", [])
    assert "NOPE" in warnings[0]


def test_expanded_unquoted_number_is_typed(tmp_path: Path, registry: Registry) -> None:
    p = write(tmp_path, "service:\n  queue_size: ${Q:-64}\npipeline: {inputs: [{name: tail, path: x}]}\n")
    assert load_config(p, registry, {}).service.queue_size == 64


def test_typo_in_key_reports_line_and_suggestion(tmp_path: Path, registry: Registry) -> None:
    text = GOOD.replace("rotate_wait: 10s", "rotate_wiat: 10s")
    err = only_error(write(tmp_path, text), registry, {"HOOK_URL": "https://h", "HOOK_SECRET": "x"})
    assert (err.line, err.key_path) == (9, "pipeline.inputs[0].rotate_wiat")
    assert "did you mean 'rotate_wait'" in str(err)
    assert str(err).startswith(f"{tmp_path / 'logwarden.yaml'}:9: ")


def test_wrong_type_and_unknown_plugin_collected_together(tmp_path: Path, registry: Registry) -> None:
    text = """\
service:
  queue_size: lots
pipeline:
  inputs:
    - name: tial
      path: x
  outputs:
    - name: webhook
      url: ftp://x
"""
    with pytest.raises(ConfigErrors) as exc:
        load_config(write(tmp_path, text), registry, {})
    by_path = {e.key_path: e for e in exc.value.errors}
    assert by_path["service.queue_size"].line == 2
    assert "did you mean 'tail'" in str(by_path["pipeline.inputs[0].name"])
    assert by_path["pipeline.inputs[0].name"].line == 5
    assert "url must be http(s)" in by_path["pipeline.outputs[0]"].message


def test_invalid_yaml_names_line(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "service:\n  a: [1, 2\npipeline: {}\n"), registry, {})
    assert exc.value.line is not None
    assert "invalid YAML" in exc.value.message


def test_missing_file(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", registry, {})


def test_duplicate_key_refused(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(ConfigErrors, match="key is set twice"):
        load_config(write(tmp_path, "service: {}\nservice: {}\npipeline: {inputs: [{name: tail, path: x}]}\n"), registry, {})


def test_preflight_warning_is_collected(tmp_path: Path, registry: Registry) -> None:
    cfg = load_config(write(tmp_path, GOOD), registry, {"HOOK_URL": "http://h/x", "HOOK_SECRET": "abcd"})
    assert any("pipeline.outputs[0].url: not https" in w for w in cfg.warnings)


def test_no_inputs_refused(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(ConfigErrors, match="at least one input"):
        load_config(write(tmp_path, "pipeline: {}\n"), registry, {})


def test_unknown_top_level_key(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(ConfigErrors, match="unknown top-level key"):
        load_config(write(tmp_path, "servce: {}\npipeline: {inputs: [{name: tail, path: x}]}\n"), registry, {})


# --- acceptance pass: documents an operator can write that used to pass, hang or crash -------------

INPUT = "pipeline: {inputs: [{name: tail, path: x}]}\n"


def test_merge_key_shares_defaults_and_keys_beside_it_win(tmp_path: Path, registry: Registry) -> None:
    text = """\
pipeline:
  inputs:
    - &app {name: tail, tag: app, path: /var/log/app/*.log, rotate_wait: 7s}
    - <<: *app
      tag: web
      path: /var/log/web/*.log
"""
    cfg = load_config(write(tmp_path, text), registry, {})
    web = cfg.inputs[1]
    assert (web.tag, web.config.path, web.config.rotate_wait) == ("web", ["/var/log/web/*.log"], Duration(7.0))


def test_unknown_yaml_tag_is_a_located_error_not_a_traceback(tmp_path: Path, registry: Registry) -> None:
    text = "service:\n  state_dir: !vault secret/path\n" + INPUT
    err = only_error(write(tmp_path, text), registry)
    assert (err.line, err.key_path) == (2, "service.state_dir")
    assert "!vault" in err.message


def test_alias_bomb_is_refused_quickly(tmp_path: Path, registry: Registry) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]  # 10**8 values
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config(write(tmp_path, "\n".join(lines) + "\n"), registry, {})


def test_state_dir_under_a_file_is_an_error(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "plain").write_text("x")
    text = f"service:\n  state_dir: {tmp_path / 'plain' / 'state'}\n" + INPUT
    err = only_error(write(tmp_path, text), registry)
    assert (err.line, err.key_path) == (2, "service.state_dir")
    assert "is not a folder" in err.message


def test_state_dir_from_an_unset_variable_is_refused(tmp_path: Path, registry: Registry) -> None:
    text = "service:\n  state_dir: ${LW_STATE}\n" + INPUT
    with pytest.raises(ConfigErrors, match="state_dir must not be empty"):
        load_config(write(tmp_path, text), registry, {})


@pytest.mark.parametrize("key", ["tick_interval", "snapshot_interval"])
def test_zero_timer_interval_is_refused(tmp_path: Path, registry: Registry, key: str) -> None:
    text = f"service:\n  state_dir: {tmp_path}\n  {key}: 0s\n" + INPUT
    err = only_error(write(tmp_path, text), registry)
    assert (err.line, err.key_path) == (3, f"service.{key}")
    assert "at least 10ms" in err.message


def test_ensure_state_dir_creates_it_or_names_the_key(tmp_path: Path, registry: Registry) -> None:
    cfg = load_config(write(tmp_path, f"service:\n  state_dir: {tmp_path / 'a' / 'b'}\n" + INPUT), registry, {})
    assert ensure_state_dir(cfg) == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "plain").write_text("x")
    cfg = load_config(
        write(tmp_path, f"service:\n  state_dir: {tmp_path / 'plain'}/s\n" + INPUT), registry, {}, preflight=False
    )
    with pytest.raises(ConfigError) as exc:
        ensure_state_dir(cfg)
    assert (exc.value.line, exc.value.key_path) == (2, "service.state_dir")
