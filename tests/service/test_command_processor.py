"""The batch command processor over a real event store (SQLite, and PostgreSQL when reachable):
every command and error code end to end, result order and positions, resends, redeliveries
after a restart, and batches in which some commands are refused."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import commands as c
from contracts.common import Permission, RoleLocation
from contracts.results import CommandResult
from services.keys.domain import ApiKey, Organization
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from tests.support.stores import STORES

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64
VIEW = [Permission("view", "location_and_below")]


# --- stores ----------------------------------------------------------------------------------


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/events.db"
        return
    import psycopg

    dsn: str = request.getfixturevalue("postgres_dsn")
    schema = f"apikeys_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{dsn}?schema={schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def open_app(store_url: str) -> Iterator[Callable[[], ApiKeysApplication]]:
    """Opens the store; every application opened is closed after the test."""
    opened: list[ApiKeysApplication] = []

    def opener() -> ApiKeysApplication:
        app = ApiKeysApplication(store_url)
        opened.append(app)
        return app

    yield opener
    for app in opened:
        app.close()


@pytest.fixture
def app(open_app: Callable[[], ApiKeysApplication]) -> ApiKeysApplication:
    return open_app()


@pytest.fixture
def processor(app: ApiKeysApplication) -> CommandProcessor:
    return CommandProcessor(app, clock=lambda: NOW)


# --- building commands and entries -----------------------------------------------------------


class Sender:
    """Builds commands with fresh command ids, as an upstream service would."""

    def __init__(self, organization_id: str = "org-1", actor_id: str = "alice"):
        self.organization_id = organization_id
        self.actor_id = actor_id
        self.ids = itertools.count(1)

    def next_id(self) -> str:
        return f"{self.organization_id}-{self.actor_id}-{next(self.ids)}"

    def directory(self, cls: type[Any], **fields: Any) -> Any:
        return cls(command_id=self.next_id(), organization_id=self.organization_id, **fields)

    def key(self, cls: type[Any], key_id: str = "k1", **fields: Any) -> Any:
        return cls(
            command_id=self.next_id(),
            organization_id=self.organization_id,
            actor_id=self.actor_id,
            key_id=key_id,
            **fields,
        )

    def create_key(self, key_id: str = "k1", **fields: Any) -> c.CreateApiKey:
        defaults: dict[str, Any] = {
            "name": "Integration",
            "location_ids": ["hq", "plant"],
            "role_ids": ["viewer"],
            "secret_sha256": SHA_A,
            "secret_hint": "ak_aaaa",
        }
        return self.key(c.CreateApiKey, key_id, **{**defaults, **fields})

    def setup(self) -> list[Any]:
        """Module on, alice an administrator, hq -> plant, office, roles viewer and editor."""
        return [
            self.directory(c.EnableApiModule),
            self.directory(c.GrantApiAdministrator, user_id=self.actor_id),
            self.directory(c.DefineLocation, location_id="hq", name="HQ", parent_id=None),
            self.directory(c.DefineLocation, location_id="plant", name="Plant", parent_id="hq"),
            self.directory(c.DefineLocation, location_id="office", name="Office", parent_id=None),
            self.directory(c.DefineRole, role_id="viewer", name="Viewer", permissions=VIEW),
            self.directory(c.DefineRole, role_id="editor", name="Editor", permissions=VIEW),
        ]


class Stream:
    """Hands out stream entry ids in order, like XADD."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)

    def entries(self, *commands: Any) -> list[Entry]:
        return [Entry(f"{next(self.ids)}-0", command) for command in commands]


@pytest.fixture
def send() -> Sender:
    return Sender()


@pytest.fixture
def stream() -> Stream:
    return Stream()


def all_accepted(results: list[CommandResult]) -> None:
    refused = [(r.type, r.status, r.error) for r in results if r.status != "accepted"]
    assert refused == []


def load_key(app: ApiKeysApplication, key_id: str) -> ApiKey:
    return app.repository.get(ApiKey.create_id(key_id))


def load_org(app: ApiKeysApplication, organization_id: str = "org-1") -> Organization:
    return app.repository.get(Organization.create_id(organization_id))


@pytest.fixture
def ready(processor: CommandProcessor, send: Sender, stream: Stream) -> CommandProcessor:
    """The organization set up and key k1 (hq, plant; viewer) created."""
    all_accepted(processor.process(stream.entries(*send.setup(), send.create_key("k1"))))
    return processor


# --- every command type ----------------------------------------------------------------------


def test_a_realistic_flow_accepts_every_command_type(
    app: ApiKeysApplication, processor: CommandProcessor, send: Sender, stream: Stream
) -> None:
    commands = [
        *send.setup(),
        send.directory(c.GrantApiAdministrator, user_id="bob"),
        send.directory(c.RevokeApiAdministrator, user_id="bob"),
        send.directory(c.DefineLocation, location_id="tmp", name="Tmp", parent_id=None),
        send.directory(c.RenameLocation, location_id="tmp", name="Temporary"),
        send.directory(c.MoveLocation, location_id="tmp", new_parent_id="hq"),
        send.directory(c.RemoveLocation, location_id="tmp"),
        send.directory(c.DefineRole, role_id="temp", name="Temp", permissions=[]),
        send.directory(
            c.ChangeRolePermissions,
            role_id="viewer",
            permissions=[Permission("view", "everywhere")],
        ),
        send.directory(c.RenameRole, role_id="viewer", name="Reader"),
        send.create_key(
            "k1",
            role_ids=["viewer", "temp"],
            role_locations=[RoleLocation("viewer", "plant")],
            expires_at=NOW + timedelta(days=90),
        ),
        send.key(c.RenameApiKey, name="  Payroll sync  "),
        send.key(c.AddKeyLocation, location_id="office"),
        send.key(c.RemoveKeyLocation, location_id="office"),
        send.key(c.AddKeyRole, role_id="editor"),
        send.key(c.RemoveKeyRole, role_id="editor"),
        send.key(c.ToggleRoleLocation, role_id="viewer", location_id="hq"),
        send.key(c.ToggleRoleLocation, role_id="viewer", location_id="plant", applies=True),
        send.key(c.RotateKeySecret, secret_sha256=SHA_B, secret_hint="ak_bbbb", grace_seconds=60),
        send.key(c.DisableApiKey),
        send.key(c.EnableApiKey),
        send.directory(c.RemoveRole, role_id="temp"),
        send.create_key("k2", location_ids=["office"]),
        send.key(c.DeleteApiKey, "k2"),
        send.directory(
            c.ImportApiKeys,
            actor_id="alice",
            keys=[
                c.ImportedKey(
                    key_id="k3", name="Imported", location_ids=["hq"], secret_sha256=SHA_B
                )
            ],
        ),
        send.directory(c.DisableApiModule),
    ]
    assert {type(command).__name__ for command in commands} == c.COMMAND_TYPES
    results = processor.process(stream.entries(*commands))
    all_accepted(results)

    key = load_key(app, "k1")
    assert key.name == "Payroll sync"
    assert key.location_ids == ["hq", "plant"]
    assert key.role_ids == ["viewer"]
    assert key.matrix == {("viewer", "hq"): False, ("viewer", "plant"): True}
    assert key.expires_at == NOW + timedelta(days=90)
    assert (key.secret_sha256, key.secret_hint) == (SHA_B, "ak_bbbb")
    assert key.previous_secret_sha256 == SHA_A
    assert key.previous_secret_valid_until == NOW + timedelta(seconds=60)
    assert (key.enabled, key.deleted) == (True, False)
    assert load_key(app, "k2").deleted is True

    org = load_org(app)
    assert org.api_module_enabled is False
    assert org.administrators == {"alice"}
    assert set(org.locations) == {"hq", "plant", "office"}
    assert set(org.roles) == {"viewer", "editor"}
    assert org.roles["viewer"].name == "Reader"
    assert org.roles["viewer"].permissions == (("view", "everywhere"),)


def test_a_disabled_api_module_refuses_key_commands_after_it(
    ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    results = ready.process(
        stream.entries(
            send.key(c.RenameApiKey, name="Before"),
            send.directory(c.DisableApiModule),
            send.key(c.RenameApiKey, name="After"),
            send.directory(c.EnableApiModule),
            send.key(c.RenameApiKey, name="Again"),
        )
    )
    assert [r.status for r in results] == [
        "accepted",
        "accepted",
        "rejected",
        "accepted",
        "accepted",
    ]
    assert results[2].error is not None
    assert results[2].error.code == "api_module_disabled"
    assert load_key(ready.app, "k1").name == "Again"


# --- every error code ------------------------------------------------------------------------


def other_organization_with_key() -> list[Any]:
    other = Sender("org-2")
    return [*other.setup(), other.create_key("k-other")]


ERROR_CASES: dict[str, tuple[str, Callable[[Sender], list[Any]]]] = {
    "module disabled": (
        "api_module_disabled",
        lambda s: [s.directory(c.DisableApiModule), s.key(c.RenameApiKey, name="x")],
    ),
    "not an administrator": (
        "not_api_administrator",
        lambda s: [Sender("org-1", "mallory").key(c.RenameApiKey, name="x")],
    ),
    "administrator revoked": (
        "not_api_administrator",
        lambda s: [
            s.directory(c.RevokeApiAdministrator, user_id="alice"),
            s.key(c.RenameApiKey, name="x"),
        ],
    ),
    "unknown organization": (
        "unknown_organization",
        lambda s: [Sender("org-nowhere").create_key("k9")],
    ),
    "unknown key": ("unknown_key", lambda s: [s.key(c.RenameApiKey, "k-missing", name="x")]),
    "key of another organization": (
        "unknown_key",
        lambda s: [*other_organization_with_key(), s.key(c.RenameApiKey, "k-other", name="x")],
    ),
    "key exists": ("key_exists", lambda s: [s.create_key("k1")]),
    "key deleted": (
        "key_deleted",
        lambda s: [s.key(c.DeleteApiKey), s.key(c.EnableApiKey)],
    ),
    "name required": ("name_required", lambda s: [s.key(c.RenameApiKey, name="   ")]),
    "name required at creation": ("name_required", lambda s: [s.create_key("k2", name="")]),
    "name too long": ("name_too_long", lambda s: [s.key(c.RenameApiKey, name="n" * 101)]),
    "location name too long": (
        "name_too_long",
        lambda s: [s.directory(c.DefineLocation, location_id="x", name="n" * 101)],
    ),
    "locations required": ("locations_required", lambda s: [s.create_key("k2", location_ids=[])]),
    "unknown location at creation": (
        "unknown_location",
        lambda s: [s.create_key("k2", location_ids=["hq", "mars"])],
    ),
    "unknown location added": (
        "unknown_location",
        lambda s: [s.key(c.AddKeyLocation, location_id="mars")],
    ),
    "unknown parent": (
        "unknown_location",
        lambda s: [s.directory(c.DefineLocation, location_id="x", name="X", parent_id="mars")],
    ),
    "unknown role at creation": (
        "unknown_role",
        lambda s: [s.create_key("k2", role_ids=["ghost"])],
    ),
    "unknown role removed": (
        "unknown_role",
        lambda s: [s.directory(c.RemoveRole, role_id="ghost")],
    ),
    "location not on key": (
        "location_not_on_key",
        lambda s: [s.key(c.RemoveKeyLocation, location_id="office")],
    ),
    "off cell location not on key": (
        "location_not_on_key",
        lambda s: [s.create_key("k2", role_locations=[RoleLocation("viewer", "office")])],
    ),
    "role not on key": ("role_not_on_key", lambda s: [s.key(c.RemoveKeyRole, role_id="editor")]),
    "toggle role not on key": (
        "role_not_on_key",
        lambda s: [s.key(c.ToggleRoleLocation, role_id="editor", location_id="hq")],
    ),
    "last location": (
        "last_location",
        lambda s: [
            s.key(c.RemoveKeyLocation, location_id="plant"),
            s.key(c.RemoveKeyLocation, location_id="hq"),
        ],
    ),
    "matrix with one location": (
        "matrix_unavailable",
        lambda s: [
            s.create_key("k2", location_ids=["hq"]),
            s.key(c.ToggleRoleLocation, "k2", role_id="viewer", location_id="hq"),
        ],
    ),
    "matrix without a role": (
        "matrix_unavailable",
        lambda s: [
            s.create_key("k2", role_ids=[]),
            s.key(c.ToggleRoleLocation, "k2", role_id="viewer", location_id="hq"),
        ],
    ),
    "location in use": (
        "location_in_use",
        lambda s: [s.directory(c.RemoveLocation, location_id="plant")],
    ),
    "location has children": (
        "location_has_children",
        lambda s: [s.directory(c.RemoveLocation, location_id="hq")],
    ),
    "location cycle": (
        "location_cycle",
        lambda s: [s.directory(c.MoveLocation, location_id="hq", new_parent_id="plant")],
    ),
    "location onto itself": (
        "location_cycle",
        lambda s: [s.directory(c.MoveLocation, location_id="hq", new_parent_id="hq")],
    ),
    "invalid secret hash": (
        "invalid_secret_hash",
        lambda s: [s.create_key("k2", secret_sha256="A" * 64)],
    ),
    "invalid rotated hash": (
        "invalid_secret_hash",
        lambda s: [s.key(c.RotateKeySecret, secret_sha256="abc")],
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_every_error_code_comes_back_through_the_processor(
    ready: CommandProcessor, send: Sender, stream: Stream, case: str
) -> None:
    code, build = ERROR_CASES[case]
    *before, refused = build(send)
    all_accepted(ready.process(stream.entries(*before)))
    key_before = load_key(ready.app, "k1")
    org_before = load_org(ready.app)

    (result,) = ready.process(stream.entries(refused))

    assert result.status == "rejected"
    assert result.error is not None
    assert result.error.code == code
    assert result.command_id == refused.command_id
    assert result.type == type(refused).__name__
    assert result.position is None
    assert load_key(ready.app, "k1").version == key_before.version
    assert load_org(ready.app).version == org_before.version


def test_every_issue_error_code_has_a_case() -> None:
    issue_codes = {
        "api_module_disabled",
        "not_api_administrator",
        "unknown_organization",
        "unknown_key",
        "key_exists",
        "key_deleted",
        "name_required",
        "name_too_long",
        "locations_required",
        "unknown_location",
        "unknown_role",
        "location_not_on_key",
        "role_not_on_key",
        "last_location",
        "matrix_unavailable",
        "location_in_use",
        "location_has_children",
        "location_cycle",
        "invalid_secret_hash",
    }
    assert {code for code, _ in ERROR_CASES.values()} == issue_codes


# --- cross-aggregate rules -------------------------------------------------------------------


def test_remove_role_removes_it_from_the_keys_that_use_it(
    ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    all_accepted(
        ready.process(
            stream.entries(
                send.create_key("k2", role_ids=["viewer", "editor"]),
                send.key(c.ToggleRoleLocation, "k2", role_id="editor", location_id="hq"),
                send.create_key("k3", role_ids=["editor"]),
            )
        )
    )
    k1_version = load_key(ready.app, "k1").version

    (result,) = ready.process(stream.entries(send.directory(c.RemoveRole, role_id="editor")))

    assert result.status == "accepted"
    app = ready.app
    assert "editor" not in load_org(app).roles
    k2 = load_key(app, "k2")
    assert k2.role_ids == ["viewer"]
    assert k2.matrix == {("viewer", "hq"): True, ("viewer", "plant"): True}
    k3 = load_key(app, "k3")
    assert (k3.role_ids, k3.matrix) == ([], {})
    assert load_key(app, "k1").version == k1_version  # a key without the role is untouched


def test_a_location_of_a_deleted_key_can_be_removed(
    ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    results = ready.process(
        stream.entries(
            send.directory(c.RemoveLocation, location_id="plant"),
            send.key(c.DeleteApiKey),
            send.directory(c.RemoveLocation, location_id="plant"),
        )
    )
    assert [r.status for r in results] == ["rejected", "accepted", "accepted"]
    assert "plant" not in load_org(ready.app).locations


def test_a_directory_command_for_a_new_organization_registers_it(
    processor: CommandProcessor, stream: Stream
) -> None:
    other = Sender("org-new")
    (result,) = processor.process(
        stream.entries(other.directory(c.DefineLocation, location_id="hq", name="HQ"))
    )
    assert result.status == "accepted"
    assert result.organization_id == "org-new"
    assert set(load_org(processor.app, "org-new").locations) == {"hq"}


def test_a_refused_first_command_registers_no_organization(
    processor: CommandProcessor, stream: Stream
) -> None:
    other = Sender("org-new")
    (result,) = processor.process(stream.entries(other.directory(c.RemoveRole, role_id="ghost")))
    assert result.status == "rejected"
    assert result.error is not None
    assert result.error.code == "unknown_role"
    key_command = other.create_key("k9")
    (result,) = processor.process(stream.entries(key_command))
    assert result.error is not None
    assert result.error.code == "unknown_organization"


# --- order and positions ---------------------------------------------------------------------


def test_results_come_in_entry_order_with_increasing_positions(
    app: ApiKeysApplication, processor: CommandProcessor, send: Sender, stream: Stream
) -> None:
    commands = [
        *send.setup(),
        send.create_key("k1"),
        send.create_key("k2", location_ids=["office"]),
        send.key(c.AddKeyLocation, "k1", location_id="office"),
        send.key(c.RenameApiKey, "k2", name="Second"),
        send.key(c.DisableApiKey, "k1"),
    ]
    results = processor.process(stream.entries(*commands))

    assert [r.command_id for r in results] == [command.command_id for command in commands]
    assert [r.type for r in results] == [type(command).__name__ for command in commands]
    positions = [r.position for r in results]
    assert all(p is not None for p in positions)
    assert positions == sorted(positions)  # type: ignore[type-var]
    assert len(set(positions)) == len(positions)
    for command, result in zip(commands, results, strict=True):
        assert result.organization_id == "org-1"
        if isinstance(command, c.KeyCommand):
            assert result.key_id == command.key_id
        else:
            assert result.key_id is None


def test_the_position_is_that_of_the_last_event_the_command_wrote(
    app: ApiKeysApplication, processor: CommandProcessor, send: Sender, stream: Stream
) -> None:
    commands = [*send.setup(), send.create_key("k1"), send.key(c.RenameApiKey, name="Renamed")]
    results = processor.process(stream.entries(*commands))
    for command, result in zip(commands, results, strict=True):
        assert result.position is not None
        (notification,) = app.recorder.select_notifications(start=result.position, limit=1)
        assert notification.id == result.position
        event = app.mapper.to_domain_event(notification)
        assert event.command_id == command.command_id
    rename = app.mapper.to_domain_event(
        app.recorder.select_notifications(start=results[-1].position, limit=1)[0]
    )
    assert isinstance(rename, ApiKey.Renamed)
    create = app.mapper.to_domain_event(
        app.recorder.select_notifications(start=results[-2].position, limit=1)[0]
    )
    assert isinstance(create, ApiKey.Created)


def test_a_rejected_command_in_the_middle_leaves_later_commands_unaffected(
    ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    results = ready.process(
        stream.entries(
            send.create_key("k2", location_ids=["hq"]),
            send.key(c.RemoveKeyLocation, "k2", location_id="hq"),  # last location
            send.key(c.AddKeyLocation, "k2", location_id="office"),
            send.key(c.ToggleRoleLocation, "k2", role_id="viewer", location_id="office"),
            send.create_key("k3", secret_sha256="nope"),
            send.create_key("k3"),
        )
    )
    assert [r.status for r in results] == [
        "accepted",
        "rejected",
        "accepted",
        "accepted",
        "rejected",
        "accepted",
    ]
    assert [r.error.code for r in results if r.error] == ["last_location", "invalid_secret_hash"]
    accepted = [r.position for r in results if r.status == "accepted"]
    assert accepted == sorted(accepted)  # type: ignore[type-var]
    k2 = load_key(ready.app, "k2")
    assert k2.location_ids == ["hq", "office"]
    assert k2.matrix == {("viewer", "hq"): True, ("viewer", "office"): False}
    assert load_key(ready.app, "k3").secret_sha256 == SHA_A


def test_an_empty_batch_has_no_results(processor: CommandProcessor) -> None:
    assert processor.process([]) == []


# --- resends and redeliveries ----------------------------------------------------------------


def test_a_resend_is_a_duplicate_with_the_first_position_and_no_new_events(
    app: ApiKeysApplication, ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    rename = send.key(c.RenameApiKey, name="Once")
    (first,) = ready.process(stream.entries(rename))
    assert first.status == "accepted"
    top = app.recorder.max_notification_id()

    (again,) = ready.process(stream.entries(rename))

    assert again.status == "duplicate"
    assert again.position == first.position
    assert again.command_id == rename.command_id
    assert again.error is None
    assert app.recorder.max_notification_id() == top


def test_a_resend_after_a_restart_is_still_a_duplicate(
    open_app: Callable[[], ApiKeysApplication], send: Sender, stream: Stream
) -> None:
    app = open_app()
    rename = send.key(c.RenameApiKey, name="Once")
    first = CommandProcessor(app).process(stream.entries(*send.setup(), send.create_key(), rename))
    all_accepted(first)
    top = app.recorder.max_notification_id()

    restarted = open_app()
    (again,) = CommandProcessor(restarted).process(stream.entries(rename))

    assert again.status == "duplicate"
    assert again.position == first[-1].position
    assert restarted.recorder.max_notification_id() == top
    assert load_key(restarted, "k1").name == "Once"


def test_a_resent_rejected_command_is_a_duplicate_of_the_rejection(
    app: ApiKeysApplication, ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    bad = send.key(c.RenameApiKey, name="")
    (first,) = ready.process(stream.entries(bad))
    top = app.recorder.max_notification_id()
    (again,) = CommandProcessor(app).process(stream.entries(bad))
    assert first.status == "rejected"
    assert again.status == "duplicate"
    assert again.error == first.error
    assert again.position is None
    assert app.recorder.max_notification_id() == top


def test_an_in_batch_duplicate_has_one_effect(
    app: ApiKeysApplication, ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    add = send.key(c.AddKeyLocation, location_id="office")
    toggle = send.key(c.ToggleRoleLocation, role_id="viewer", location_id="hq")
    results = ready.process(stream.entries(add, toggle, add, toggle))

    assert [r.status for r in results] == ["accepted", "accepted", "duplicate", "duplicate"]
    assert results[2].position == results[0].position
    assert results[3].position == results[1].position
    key = load_key(app, "k1")
    assert key.location_ids == ["hq", "plant", "office"]
    assert key.matrix[("viewer", "hq")] is False  # flipped once, not twice


def test_a_redelivered_entry_gets_its_original_outcome_from_the_same_processor(
    app: ApiKeysApplication, ready: CommandProcessor, send: Sender, stream: Stream
) -> None:
    entries = stream.entries(
        send.key(c.RenameApiKey, name="Renamed"),
        send.key(c.RemoveKeyRole, role_id="editor"),
    )
    first = ready.process(entries)
    top = app.recorder.max_notification_id()
    assert ready.process(entries) == first
    assert app.recorder.max_notification_id() == top


def test_a_redelivery_after_a_restart_gets_the_original_outcome(
    open_app: Callable[[], ApiKeysApplication], send: Sender, stream: Stream
) -> None:
    """The consumer stored a batch and crashed before acknowledging it: the entries come
    again to a new process, which must answer as the first time and change nothing."""
    app = open_app()
    entries = stream.entries(
        *send.setup(),
        send.create_key("k1"),
        send.key(c.RenameApiKey, name="Renamed"),
        send.key(c.RemoveKeyLocation, location_id="office"),  # rejected
        send.key(c.ToggleRoleLocation, role_id="viewer", location_id="hq"),
        send.create_key("k1"),  # rejected: key_exists
    )
    first = CommandProcessor(app, clock=lambda: NOW).process(entries)
    assert [r.status for r in first[-5:]] == [
        "accepted",
        "accepted",
        "rejected",
        "accepted",
        "rejected",
    ]
    top = app.recorder.max_notification_id()

    restarted = open_app()
    again = CommandProcessor(restarted, clock=lambda: NOW).process(entries)

    assert [(r.command_id, r.status, r.position, r.error) for r in again] == [
        (r.command_id, r.status, r.position, r.error) for r in first
    ]
    assert restarted.recorder.max_notification_id() == top
    key = load_key(restarted, "k1")
    assert key.name == "Renamed"
    assert key.matrix[("viewer", "hq")] is False  # toggled once


def test_a_redelivery_mixed_with_new_entries_applies_only_the_new_ones(
    open_app: Callable[[], ApiKeysApplication], send: Sender, stream: Stream
) -> None:
    app = open_app()
    old = stream.entries(*send.setup(), send.create_key("k1"))
    first = CommandProcessor(app).process(old)
    all_accepted(first)

    restarted = open_app()
    new = stream.entries(
        send.key(c.AddKeyLocation, location_id="office"),
        send.key(c.RemoveKeyLocation, location_id="mars"),
    )
    results = CommandProcessor(restarted).process(old[-2:] + new)

    assert [(r.status, r.position) for r in results[:2]] == [
        (r.status, r.position) for r in first[-2:]
    ]
    assert results[2].status == "accepted"
    assert results[2].position is not None
    assert results[2].position > max(r.position or 0 for r in first)
    assert results[3].status == "rejected"
    assert results[3].error is not None
    assert results[3].error.code == "location_not_on_key"
    assert load_key(restarted, "k1").location_ids == ["hq", "plant", "office"]


def test_a_resend_and_a_redelivery_in_one_batch_after_a_restart(
    open_app: Callable[[], ApiKeysApplication], send: Sender, stream: Stream
) -> None:
    app = open_app()
    entries = stream.entries(*send.setup(), send.create_key("k1"))
    first = CommandProcessor(app).process(entries)
    top = app.recorder.max_notification_id()

    restarted = open_app()
    create = entries[-1]
    resend = Entry("999-0", create.command)
    results = CommandProcessor(restarted).process([create, resend])

    assert [r.status for r in results] == ["accepted", "duplicate"]
    assert results[0].position == results[1].position == first[-1].position
    assert restarted.recorder.max_notification_id() == top


def test_after_a_restart_a_redelivery_a_new_command_and_its_resend_in_one_batch(
    open_app: Callable[[], ApiKeysApplication], send: Sender, stream: Stream
) -> None:
    app = open_app()
    old = stream.entries(*send.setup(), send.create_key("k1"))
    first = CommandProcessor(app).process(old)

    restarted = open_app()
    (new,) = stream.entries(send.key(c.AddKeyLocation, location_id="office"))
    resend = Entry("999-0", new.command)
    results = CommandProcessor(restarted).process([old[-1], new, resend])

    assert [r.status for r in results] == ["accepted", "accepted", "duplicate"]
    assert results[0].position == first[-1].position
    assert results[2].position == results[1].position
    assert load_key(restarted, "k1").location_ids == ["hq", "plant", "office"]


def test_a_batch_touching_more_aggregates_than_the_cache_holds_sees_its_own_changes(
    app: ApiKeysApplication, send: Sender, stream: Stream
) -> None:
    processor = CommandProcessor(app, cache_size=2)
    results = processor.process(
        stream.entries(
            *send.setup(),
            send.create_key("k1"),
            send.create_key("k2"),
            send.key(c.RenameApiKey, "k1", name="Renamed"),
        )
    )
    all_accepted(results)
    assert load_key(app, "k1").name == "Renamed"


# --- two replicas on one store ---------------------------------------------------------------


@pytest.fixture
def two_replicas(
    open_app: Callable[[], ApiKeysApplication], send: Sender, stream: Stream
) -> tuple[CommandProcessor, CommandProcessor]:
    """Two keys-service processes on one store (README: several replicas, or a replica per
    commands stream). The key replica has the organization in its cache."""
    keys_replica = CommandProcessor(open_app())
    directory_replica = CommandProcessor(open_app())
    all_accepted(keys_replica.process(stream.entries(*send.setup(), send.create_key("k1"))))
    return keys_replica, directory_replica


def test_an_administrator_revoked_by_another_replica_is_refused(
    two_replicas: tuple[CommandProcessor, CommandProcessor], send: Sender, stream: Stream
) -> None:
    keys_replica, directory_replica = two_replicas
    revoke = send.directory(c.RevokeApiAdministrator, user_id="alice")
    all_accepted(directory_replica.process(stream.entries(revoke)))

    (result,) = keys_replica.process(stream.entries(send.key(c.RenameApiKey, name="Later")))

    assert result.status == "rejected"
    assert result.error is not None
    assert result.error.code == "not_api_administrator"


def test_a_location_defined_by_another_replica_can_be_added_to_a_key(
    two_replicas: tuple[CommandProcessor, CommandProcessor], send: Sender, stream: Stream
) -> None:
    keys_replica, directory_replica = two_replicas
    define = send.directory(c.DefineLocation, location_id="lab", name="Lab", parent_id=None)
    all_accepted(directory_replica.process(stream.entries(define)))

    (result,) = keys_replica.process(stream.entries(send.key(c.AddKeyLocation, location_id="lab")))

    assert (result.status, result.error) == ("accepted", None)


def test_a_location_added_to_a_key_by_another_replica_is_in_use(
    two_replicas: tuple[CommandProcessor, CommandProcessor], send: Sender, stream: Stream
) -> None:
    keys_replica, directory_replica = two_replicas
    # the directory replica loads the keys of the organization (plant is in use)
    (in_use,) = directory_replica.process(
        stream.entries(send.directory(c.RemoveLocation, location_id="plant"))
    )
    assert in_use.error is not None
    assert in_use.error.code == "location_in_use"
    all_accepted(
        keys_replica.process(stream.entries(send.key(c.AddKeyLocation, location_id="office")))
    )

    (result,) = directory_replica.process(
        stream.entries(send.directory(c.RemoveLocation, location_id="office"))
    )

    assert result.status == "rejected"
    assert result.error is not None
    assert result.error.code == "location_in_use"


def test_a_revocation_stored_during_another_replicas_batch_applies_to_its_next_batch(
    open_app: Callable[[], ApiKeysApplication], send: Sender, stream: Stream
) -> None:
    directory_replica = CommandProcessor(open_app())
    revoke = send.directory(c.RevokeApiAdministrator, user_id="alice")
    pending = [revoke]

    def clock_that_lets_the_other_replica_write() -> datetime:
        # called once per batch after the cache check: the other replica commits meanwhile
        while pending:
            all_accepted(directory_replica.process(stream.entries(pending.pop())))
        return NOW

    keys_replica = CommandProcessor(open_app(), clock=lambda: NOW)
    all_accepted(keys_replica.process(stream.entries(*send.setup(), send.create_key("k1"))))
    keys_replica.clock = clock_that_lets_the_other_replica_write
    keys_replica.process(stream.entries(send.key(c.RenameApiKey, name="During")))  # a race

    (after,) = keys_replica.process(stream.entries(send.key(c.RenameApiKey, name="After")))

    assert after.status == "rejected"
    assert after.error is not None
    assert after.error.code == "not_api_administrator"
