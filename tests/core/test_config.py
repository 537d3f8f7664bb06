"""Loading configuration: the file, the environment, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mxbridge._config import load_config
from mxbridge._errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mxbridge.toml"


def write(tmp_path: Path, text: str) -> Path:
    """Write a configuration file and return its path."""
    path = tmp_path / "mxbridge.toml"
    path.write_text(text)
    return path


def test_the_example_configuration_loads() -> None:
    """The committed example is valid and takes its secret from the environment."""
    config = load_config(EXAMPLE, {"MAINTAINX_WEBHOOK_SECRET": "s1, s2"})

    assert config.sources["default"].secrets == ["s1", "s2"]
    assert config.server.port == 8080


def test_no_file_and_an_env_secret_make_a_default_source() -> None:
    """With no file, MAINTAINX_WEBHOOK_SECRET alone is enough."""
    config = load_config(None, {"MAINTAINX_WEBHOOK_SECRET": "only"})

    assert config.sources["default"].secrets == ["only"]
    assert config.store.url == "sqlite:///mxbridge.db"


def test_store_url_from_the_environment_wins(tmp_path: Path) -> None:
    """MXBRIDGE_STORE_URL overrides the file's store URL."""
    path = write(tmp_path, '[store]\nurl = "sqlite:///a.db"\n')

    config = load_config(path, {"MXBRIDGE_STORE_URL": "sqlite:///b.db"})

    assert config.store.url == "sqlite:///b.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[server]\nprot = 1\n", "server.prot: unknown key", id="typo"),
        pytest.param(
            "[server]\nport = 70000\n", "server.port: Input should be less", id="range"
        ),
        pytest.param(
            '[sources.a]\nsecrets = ["  "]\n',
            "sources.a.secrets: Value error",
            id="blank",
        ),
        pytest.param(
            '[sources.a]\nscheme = "hmac"\n',
            "sources.a.scheme: Input should be",
            id="enum",
        ),
        pytest.param(
            '[sources.a]\npublic_url = "hooks.example.net"\n',
            "sources.a.public_url",
            id="relative-url",
        ),
        pytest.param('[sources."a/b"]\n', "may hold only", id="source-name"),
        pytest.param("[server\n", "not valid TOML", id="toml"),
    ],
)
def test_invalid_configuration_names_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    """Each mistake is a ConfigError naming the file, the key and the problem."""
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_blank_secret_in_the_environment_is_refused() -> None:
    """A comma-separated list with an empty item is an error, not a weak secret."""
    with pytest.raises(ConfigError, match="empty or whitespace-only"):
        load_config(None, {"MAINTAINX_WEBHOOK_SECRET": "good,  "})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A --config that does not exist says so."""
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml", {})


def test_a_secret_that_is_not_text_is_refused() -> None:
    """A secret with bytes that are not UTF-8 stops at load, naming the source."""
    with pytest.raises(ConfigError, match=r"sources\.default.*not valid UTF-8"):
        load_config(None, {"MAINTAINX_WEBHOOK_SECRET": "abc\udcff"})


def test_a_relative_app_file_is_found_beside_the_configuration(tmp_path: Path) -> None:
    """app = "handlers.py:bridge" means the file next to mxbridge.toml."""
    path = write(tmp_path, 'app = "handlers.py:bridge"\n')

    config = load_config(path, {})

    assert config.app == f"{tmp_path / 'handlers.py'}:bridge"


def test_an_app_file_in_the_home_directory(tmp_path: Path) -> None:
    """`~` in app is the user's home, not a folder named ~ beside the file."""
    path = write(tmp_path, 'app = "~/handlers.py:bridge"\n')

    assert load_config(path, {}).app == f"{Path.home() / 'handlers.py'}:bridge"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///data/m.db", "sqlite:///{dir}/data/m.db", id="relative"),
        pytest.param("sqlite:////srv/m.db", "sqlite:////srv/m.db", id="absolute"),
        pytest.param("sqlite:///~/m.db", "sqlite:///{home}/m.db", id="home"),
        pytest.param("sqlite://", "sqlite://", id="memory"),
        pytest.param(
            "postgresql+psycopg://u@db/mx", "postgresql+psycopg://u@db/mx", id="pg"
        ),
    ],
)
def test_a_relative_sqlite_store_is_beside_the_configuration(
    tmp_path: Path, url: str, expected: str
) -> None:
    """Every command given one file finds one store, wherever it is run from."""
    path = write(tmp_path, f'[store]\nurl = "{url}"\n')

    config = load_config(path, {})

    assert config.store.url == expected.format(dir=tmp_path, home=Path.home())


def test_home_in_the_store_url_from_the_environment() -> None:
    """MXBRIDGE_STORE_URL=sqlite:///~/m.db is the user's home too."""
    config = load_config(None, {"MXBRIDGE_STORE_URL": "sqlite:///~/m.db"})

    assert config.store.url == f"sqlite:///{Path.home()}/m.db"


@pytest.mark.parametrize(
    ("content", "key"),
    [
        pytest.param('app = "~nosuchuser-mx/h.py:bridge"\n', "app", id="app"),
        pytest.param(
            '[store]\nurl = "sqlite:///~nosuchuser-mx/m.db"\n', "store.url", id="store"
        ),
    ],
)
def test_a_home_that_does_not_exist_names_the_key(
    tmp_path: Path, content: str, key: str
) -> None:
    """~user for no such user is a configuration error naming the key."""
    path = write(tmp_path, content)

    with pytest.raises(ConfigError, match=rf"^{path}: {key}: ~nosuchuser-mx"):
        load_config(path, {})
