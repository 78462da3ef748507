"""Secret lookup (env, systemd credential, plugin, keyring) and the `fit keys` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import keyring
import keyring.errors
import pytest
from click.testing import CliRunner
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from fit_cli.keys import keys, secret_report
from fit_core.adapter import Adapter
from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError, ExitCode
from fit_core.hookspecs import hookimpl
from fit_core.plugins import Registry, load_plugins
from fit_core.redact import MASK, redact
from fit_core.secrets import SERVICE, SecretStore, credential_name, env_name

VALUE = "tok-1234-secret"


# -- names ------------------------------------------------------------------------------------


def test_env_and_credential_names() -> None:
    assert env_name("clinic_redcap", "token") == "FIT_CLINIC_REDCAP_TOKEN"
    assert env_name("a", "service-account.json") == "FIT_A_SERVICE_ACCOUNT_JSON"
    assert credential_name("clinic_redcap", "token") == "clinic_redcap.token"


@pytest.mark.parametrize("source,key", [("a", "../x"), ("a/b", "k"), ("a", ""), ("a", "k y")])
def test_names_that_could_escape_the_credentials_directory_are_refused(
    source: str, key: str
) -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        SecretStore().find(source, key)


# -- lookup order -----------------------------------------------------------------------------


@pytest.fixture
def everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, memory_keyring: KeyringBackend
) -> dict[str, Any]:
    """The secret src.token set in all four places, with different values."""
    monkeypatch.setenv("FIT_SRC_TOKEN", "from-env")
    (tmp_path / "src.token").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    memory_keyring.set_password(SERVICE, "src.token", "from-keyring")
    plugin: dict[str, str | None] = {"value": "from-plugin"}
    return {"plugin": plugin, "store": SecretStore(lambda s, k: plugin["value"])}


def test_lookup_order_env_credential_plugin_keyring(
    everywhere: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store: SecretStore = everywhere["store"]
    assert store.find("src", "token") == ("from-env", "env FIT_SRC_TOKEN")
    monkeypatch.delenv("FIT_SRC_TOKEN")
    assert store.find("src", "token") == ("from-credential", "systemd credential")
    (tmp_path / "src.token").unlink()
    assert store.find("src", "token") == ("from-plugin", "plugin")
    everywhere["plugin"]["value"] = None
    assert store.find("src", "token") == ("from-keyring", "keyring")
    assert store.get("src", "token") == "from-keyring"


def test_empty_env_variable_counts_as_unset(
    everywhere: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIT_SRC_TOKEN", "")
    assert everywhere["store"].get("src", "token") == "from-credential"


def test_credential_file_loses_one_trailing_newline_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "src.token").write_text("line1\nline2\n\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert SecretStore().get("src", "token") == "line1\nline2\n"


def test_plugin_resolver_through_the_registry() -> None:
    class VaultPlugin:
        @hookimpl
        def fit_resolve_secret(self, source: str, key: str) -> str | None:
            return "from-vault" if (source, key) == ("src", "token") else None

    reg = load_plugins(extra=[VaultPlugin()], entry_points=False)
    store = SecretStore(reg.resolve_secret)
    assert store.find("src", "token") == ("from-vault", "plugin")
    assert store.find("src", "other") == (None, None)


def test_a_failing_plugin_is_a_config_error_without_its_message() -> None:
    def resolver(source: str, key: str) -> str | None:
        raise RuntimeError(f"vault leaked {VALUE}")

    with pytest.raises(ConfigError) as info:
        SecretStore(resolver).get("src", "token")
    assert "RuntimeError" in str(info.value)
    assert VALUE not in str(info.value)


def test_values_found_are_registered_for_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIT_SRC_TOKEN", VALUE)
    SecretStore().get("src", "token")
    assert redact(f"Authorization: {VALUE}") == f"Authorization: {MASK}"


# -- missing secrets and keyring trouble ------------------------------------------------------


def test_missing_secret_names_all_three_ways_to_set_it() -> None:
    with pytest.raises(ConfigError) as info:
        SecretStore().get("clinic_redcap", "token")
    err = info.value
    assert err.exit_code == ExitCode.CONFIG
    assert "'token'" in err.message and "'clinic_redcap'" in err.message
    assert err.hint is not None
    assert "`fit keys set clinic_redcap token`" in err.hint
    assert "FIT_CLINIC_REDCAP_TOKEN" in err.hint
    assert "LoadCredential=clinic_redcap.token" in err.hint


@pytest.fixture(params=["fail", "null", "empty-chainer"])
def no_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "fail":
        keyring.set_keyring(fail.Keyring())
    elif request.param == "null":
        keyring.set_keyring(null.Keyring())
    else:
        monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
        keyring.set_keyring(chainer.ChainerBackend())


@pytest.mark.usefixtures("no_backend")
def test_without_keyring_backend_get_uses_env_and_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FIT_SRC_TOKEN", "from-env")
    (tmp_path / "src.key").write_text("from-credential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    store = SecretStore()
    assert store.get("src", "token") == "from-env"
    assert store.get("src", "key") == "from-credential"
    with pytest.raises(ConfigError, match="no keyring backend"):
        store.get("src", "missing")


@pytest.mark.usefixtures("no_backend")
def test_without_keyring_backend_set_and_delete_explain_the_alternatives() -> None:
    for action in (lambda s: s.set("src", "token", VALUE), lambda s: s.delete("src", "token")):
        with pytest.raises(ConfigError) as info:
            action(SecretStore())
        text = str(info.value)
        assert "no keyring backend" in text
        assert "FIT_SRC_TOKEN" in text
        assert "LoadCredential=src.token" in text
        assert "keyrings.alt" in text and "file" in text
        assert VALUE not in text


def test_keyring_errors_become_config_errors_without_the_value() -> None:
    class Broken(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def delete_password(self, service: str, username: str) -> None:
            raise NotImplementedError

        def get_password(self, service: str, username: str) -> str | None:
            raise keyring.errors.KeyringLocked("collection is locked")

        def set_password(self, service: str, username: str, password: str) -> None:
            raise keyring.errors.PasswordSetError(f"cannot store {password}")

    keyring.set_keyring(Broken())
    with pytest.raises(ConfigError, match="locked"):
        SecretStore().get("src", "token")
    with pytest.raises(ConfigError) as info:
        SecretStore().set("src", "token", VALUE)
    assert VALUE not in str(info.value)


def test_set_and_delete_use_the_keyring(memory_keyring: KeyringBackend) -> None:
    store = SecretStore()
    store.set("src", "token", VALUE)
    assert memory_keyring.get_password("fit", "src.token") == VALUE
    assert store.find("src", "token") == (VALUE, "keyring")
    store.delete("src", "token")
    assert memory_keyring.get_password("fit", "src.token") is None
    with pytest.raises(ConfigError, match="nothing to delete"):
        store.delete("src", "token")
    with pytest.raises(ConfigError, match="empty"):
        store.set("src", "token", "")


# -- the CLI ----------------------------------------------------------------------------------


class FakeAdapter(Adapter):
    name = "fake"
    secret_keys: ClassVar[tuple[str, ...]] = ("token", "password")


class FakePlugin:
    @hookimpl
    def fit_register_adapters(self, register: Any) -> None:
        register(FakeAdapter)


@pytest.fixture
def registry() -> Registry:
    return load_plugins(extra=[FakePlugin()], entry_points=False)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[store]\npath = ":memory:"\n'
        '[sources.api]\nadapter = "fake"\n'
        '[sources.mystery]\nadapter = "nosuch"\n'
    )
    return path


def run(args: list[str], obj: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return CliRunner().invoke(keys, args, obj=obj, **kwargs)


def test_cli_set_from_stdin_never_echoes_the_value(memory_keyring: KeyringBackend) -> None:
    result = run(["set", "src", "token"], input=f"{VALUE}\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.get_password("fit", "src.token") == VALUE
    assert VALUE not in result.stdout + result.stderr


def test_cli_set_prompts_twice_on_a_terminal(
    memory_keyring: KeyringBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fit_cli.keys._stdin_is_tty", lambda: True)
    result = run(["set", "src", "token"], input=f"{VALUE}\n{VALUE}\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.get_password("fit", "src.token") == VALUE
    assert VALUE not in result.output
    assert "Value for src.token" in result.output


def test_cli_set_from_file(memory_keyring: KeyringBackend, tmp_path: Path) -> None:
    account = tmp_path / "sa.json"
    account.write_text('{"type": "service_account"}\n')
    result = run(["set", "forms", "service_account", "--from-file", str(account)])
    assert result.exit_code == 0, result.output
    assert memory_keyring.get_password("fit", "forms.service_account") == (
        '{"type": "service_account"}'
    )


def test_cli_set_with_empty_stdin_is_a_usage_error(memory_keyring: KeyringBackend) -> None:
    result = run(["set", "src", "token"], input="")
    assert result.exit_code == ExitCode.USAGE
    assert memory_keyring.get_password("fit", "src.token") is None


def test_cli_set_rejects_a_bad_key_name() -> None:
    result = run(["set", "src", "../etc"], input=VALUE)
    assert result.exit_code == ExitCode.USAGE


def test_cli_set_warns_about_an_unconfigured_source_or_key(
    config_path: Path, registry: Registry
) -> None:
    obj = {"config_path": str(config_path), "registry": registry}
    result = run(["set", "apj", "token"], obj=obj, input=VALUE)
    assert result.exit_code == 0
    assert "warning: no source 'apj'" in result.stderr
    result = run(["set", "api", "tokn"], obj=obj, input=VALUE)
    assert "does not use a secret 'tokn' (it uses: token, password)" in result.stderr


def test_cli_set_without_backend_exits_config() -> None:
    keyring.set_keyring(fail.Keyring())
    result = run(["set", "src", "token"], input=VALUE)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr.startswith("error: no keyring backend")
    assert "FIT_SRC_TOKEN" in result.stderr and "LoadCredential=src.token" in result.stderr


def test_cli_get_is_masked_unless_show(
    memory_keyring: KeyringBackend, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_keyring.set_password("fit", "src.token", VALUE)
    obj = {"registry": registry}
    result = run(["get", "src", "token"], obj=obj)
    assert result.exit_code == 0
    assert result.stdout == "set (keyring)\n"
    assert VALUE not in result.output
    result = run(["get", "src", "token", "--show"], obj=obj)
    assert result.stdout == f"{VALUE}\n"
    monkeypatch.setenv("FIT_SRC_TOKEN", "other-value")
    assert run(["get", "src", "token"], obj=obj).stdout == "set (env FIT_SRC_TOKEN)\n"


def test_cli_get_missing_exits_config_with_hint(registry: Registry) -> None:
    result = run(["get", "src", "token"], obj={"registry": registry})
    assert result.exit_code == ExitCode.CONFIG
    assert result.stdout == ""
    assert "error: secret 'token' for source 'src' is not set" in result.stderr
    assert "hint: run `fit keys set src token`" in result.stderr


def test_cli_delete(memory_keyring: KeyringBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    memory_keyring.set_password("fit", "src.token", VALUE)
    monkeypatch.setenv("FIT_SRC_TOKEN", "still-here")
    result = run(["delete", "src", "token"])
    assert result.exit_code == 0
    assert memory_keyring.get_password("fit", "src.token") is None
    assert "still set (env FIT_SRC_TOKEN)" in result.stderr
    assert "still-here" not in result.output
    assert run(["delete", "src", "token"]).exit_code == ExitCode.CONFIG


def test_cli_list_json(
    config_path: Path,
    registry: Registry,
    memory_keyring: KeyringBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory_keyring.set_password("fit", "api.token", VALUE)
    monkeypatch.setenv("FIT_API_PASSWORD", "pw-value-123")
    obj = {"config_path": str(config_path), "registry": registry}
    result = run(["list", "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    assert VALUE not in result.stdout and "pw-value-123" not in result.stdout
    rows = {row["source"]: row for row in json.loads(result.stdout)}
    assert rows["mystery"] == {
        "source": "mystery",
        "adapter": "nosuch",
        "adapter_installed": False,
        "enabled": True,
        "secrets": [],
    }
    found = {s["key"]: (s["found"], s["env"]) for s in rows["api"]["secrets"]}
    assert found == {"token": ("keyring", "FIT_API_TOKEN"), "password": ("env", "FIT_API_PASSWORD")}


def test_cli_list_text_reads_fit_config_env(config_path: Path, registry: Registry) -> None:
    result = run(["list"], obj={"registry": registry}, env={"FIT_CONFIG": str(config_path)})
    assert result.exit_code == 0, result.output
    assert (
        "api (fake)\n  token: missing (fit keys set api token, or FIT_API_TOKEN)" in result.stdout
    )
    assert "mystery (nosuch): adapter not installed" in result.stdout


def test_cli_list_without_config_exits_config(tmp_path: Path) -> None:
    result = run(["list"], obj={"config_path": str(tmp_path / "none.toml")})
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr.startswith("error: config file")


def test_secret_report_with_the_csv_adapter() -> None:
    config = config_from_mapping({"sources": {"files": {"adapter": "csv", "path": "x.csv"}}})
    (row,) = secret_report(config, load_plugins())
    assert row["adapter_installed"] is True
    assert all(s["found"] == "missing" for s in row["secrets"])
