"""The projection service's settings come from the environment, with defaults."""

import pytest

from services.projections.runtime.settings import Settings


def test_defaults():
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.events_stream == "apikeys.events"
    assert settings.view_store == "sqlite:///var/views.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.min_position_wait == 5.0


def test_environment_overrides():
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://r:1/2",
            "APIKEYS_EVENTS_STREAM": "s",
            "APIKEYS_VIEW_STORE": "postgresql://u@h:5432/d",
            "APIKEYS_HTTP_ADDR": "0.0.0.0:9000",
            "APIKEYS_MIN_POSITION_WAIT": "0.5",
        }
    )
    assert settings.redis_url == "redis://r:1/2"
    assert settings.events_stream == "s"
    assert settings.view_store == "postgresql://u@h:5432/d"
    assert settings.http_addr == "0.0.0.0:9000"
    assert settings.min_position_wait == 0.5


def test_a_bad_address_is_refused():
    with pytest.raises(ValueError):
        Settings.from_env({"APIKEYS_HTTP_ADDR": "nonsense"})


def test_a_postgres_store_url_may_name_a_schema() -> None:
    from services.common.store_url import PostgresUrl, parse_store_url

    target = parse_store_url("postgresql://u@h:5432/db?schema=views_1")
    assert isinstance(target, PostgresUrl)
    assert (target.conninfo, target.schema) == ("postgresql://u@h:5432/db", "views_1")
    plain = parse_store_url("postgresql://u@h/db")
    assert isinstance(plain, PostgresUrl)
    assert (plain.conninfo, plain.schema) == ("postgresql://u@h/db", None)
    with pytest.raises(ValueError):
        parse_store_url("postgresql://u@h/db?schema=x;drop")


def test_one_http_worker_by_default_that_persists():
    settings = Settings.from_env({})
    assert settings.http_workers == 1
    assert settings.worker_socket_fd is None and settings.persists


def test_a_worker_is_told_its_socket_and_that_it_keeps_memory_only():
    settings = Settings.from_env(
        {
            "APIKEYS_HTTP_WORKERS": "2",
            "APIKEYS_HTTP_WORKER_SOCKET_FD": "7",
            "APIKEYS_HTTP_WORKER_MEMORY_ONLY": "true",
        }
    )
    assert (settings.http_workers, settings.worker_socket_fd, settings.persists) == (2, 7, False)


@pytest.mark.parametrize("workers", ["0", "65", "-1"])
def test_http_workers_out_of_range_refused(workers):
    with pytest.raises(ValueError, match="APIKEYS_HTTP_WORKERS"):
        Settings.from_env({"APIKEYS_HTTP_WORKERS": workers})
