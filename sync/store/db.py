"""Opening the state store: engine from a URL, SQLite pragmas, migrations, transactions.

SQLite is the embedded default, one file in the user's state directory; PostgreSQL is
chosen by URL (``postgresql+psycopg://...``). An empty database is migrated to the
current schema on first use; an older one asks for ``jira-crm-sync db upgrade``.

Opening a store at this version's schema costs one read of ``alembic_version`` against the
head revision read from the migration files' ``revision`` lines: alembic itself (a fifth of
a second to import) is imported only when the schema is not current.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from sync.store.schema import use_postgresql

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATIONS",
    "Store",
    "StoreError",
    "alembic_config",
    "create_engine",
    "current_revision",
    "default_state_path",
    "default_url",
    "display_url",
    "driver_problem",
    "head_revision",
    "open_store",
    "open_store_for_reading",
    "sqlite_path",
    "storage_failure",
    "upgrade",
]

MIGRATIONS = Path(__file__).with_name("migrations")
#: How long a SQLite writer waits for another one before giving up, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


class StoreError(Exception):
    """The state store cannot be used; the message names the database and what to do."""


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/jira-crm-sync/state.db`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "jira-crm-sync" / "state.db"


def default_url() -> str:
    """The SQLite URL of the default state file."""
    return f"sqlite:///{default_state_path()}"


def sqlite_path(url: str | sa.URL) -> Path | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite."""
    url = sa.make_url(url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser().absolute()


def display_url(url: str | sa.URL) -> str:
    """``url`` as shown to people: with any password hidden."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _prepare_sqlite_file(path: Path) -> None:
    """Create the state directory (0700) and an empty state file (0600); refuse early, and
    clearly, where SQLite could not write.

    The file holds customer names, scores and cases: SQLite would create it 0644 (less the
    umask), so it is created here, empty (which SQLite reads as a new database), and
    SQLite gives its -wal, -shm and -journal files the database file's mode.
    """
    fix = "set [state].url to a writable location, or fix the permissions"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(
            f"cannot create the state directory {path.parent}: {err.strerror or err}; {fix}"
        ) from err
    if not path.parent.is_dir():
        raise StoreError(f"the state directory {path.parent} is not a directory; {fix}")
    if path.exists() and not path.is_file():
        raise StoreError(f"the state file {path} is not a regular file; {fix}")
    # SQLite in WAL mode writes -wal and -shm files beside the database.
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StoreError(f"the state directory {path.parent} is not writable; {fix}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"the state file {path} is read-only; {fix}")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass  # it exists (perhaps created by another process just now): SQLite opens it
    except OSError as err:
        raise StoreError(f"cannot create the state file {path}: {err.strerror}; {fix}") from err


#: The pip requirement that provides each database driver a URL may name.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "psycopg2cffi": "psycopg2cffi",
    "pg8000": "pg8000",
}
_SUPPORTED = "use a sqlite:/// path or a postgresql+psycopg:// URL in [state].url"


def driver_problem(url: str | sa.URL) -> str | None:
    """What to install (or write instead) when the driver ``url`` names cannot be loaded;
    None when it can. Imports the driver, connects to nothing."""
    url = sa.make_url(url)
    shown = display_url(url)
    try:
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except sa.exc.NoSuchModuleError:
        return f"{shown}: SQLAlchemy knows no driver {url.drivername!r}; {_SUPPORTED}"
    except ImportError as err:
        driver = url.get_driver_name()
        package = _DRIVER_PACKAGES.get(driver, err.name or driver)
        bare = "+" not in url.drivername  # a bare postgresql:// means SQLAlchemy's default
        implied = f" ({url.drivername}:// means {driver} to SQLAlchemy)" if bare else ""
        return (
            f"{shown} needs the Python package {package}, which is not installed{implied}: "
            f"pip install '{package}' where jira-crm-sync is installed, or write "
            "postgresql+psycopg:// (its driver comes with jira-crm-sync)"
        )
    if getattr(dialect, "is_async", False):
        return f"{shown}: {url.get_driver_name()} is an asyncio driver; {_SUPPORTED}"
    return None


def _sqlite_listeners(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin() below emit BEGIN itself, so reads are transactional too
        # and a writer can take the write lock up front (BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


def create_engine(url: str | sa.URL | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: the SQLite file in the user's state directory).

    SQLite gets WAL, foreign keys and a busy timeout on every connection, and its state
    directory is created. Nothing is migrated here; see :func:`open_store`.
    """
    url = sa.make_url(url or default_url())
    backend = url.get_backend_name()
    if backend in ("sqlite", "postgresql"):
        problem = driver_problem(url)
        if problem is not None:
            raise StoreError(problem)
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is None:
            kwargs.setdefault("poolclass", StaticPool)
            kwargs.setdefault("connect_args", {"check_same_thread": False})
        else:
            _prepare_sqlite_file(path)
            url = url.set(database=str(path))
        engine = sa.create_engine(url, **kwargs)
        _sqlite_listeners(engine)
        return engine
    if backend == "postgresql":
        use_postgresql()
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(url, **kwargs)
    raise StoreError(f"unsupported state database {display_url(url)}: {_SUPPORTED}")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configured in code (no alembic.ini), optionally bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


#: A migration file's ``revision = "..."`` and ``down_revision = ...`` lines.
_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r'["\']([^"\']+)["\']')


@functools.cache
def head_revision() -> str:
    """The newest migration this version of the program knows: read from the migration
    files' ``revision``/``down_revision`` lines (no alembic import); alembic's own answer
    when those do not name exactly one head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(
            (name, _QUOTED.findall(value))
            for name, value in _REVISION_LINE.findall(path.read_text("utf-8"))
        )
        if len(found.get("revision", ())) != 1:
            return _alembic_head()
        revisions.update(found["revision"])
        parents.update(found.get("down_revision", ()))
    heads = revisions - parents
    if len(heads) != 1:
        return _alembic_head()
    (head,) = heads
    return head


def _alembic_head() -> str:
    """The head revision as alembic finds it in the migrations directory."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's migration revision; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _stored_revision(engine: Engine) -> str | None:
    """``alembic_version``'s one revision, read with one query; None when there is no such
    table (or not exactly one row): then alembic looks (:func:`_schema_state`)."""
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:
        return None
    return str(found[0][0]) if len(found) == 1 else None


def _current(engine: Engine) -> bool:
    """Whether the database is at this version's schema, by the one cheap read."""
    return _stored_revision(engine) == head_revision()


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                yield conn
    except sa.exc.OperationalError as err:
        if _read_only(err):
            raise _unusable(engine, err) from err
        raise


def _read_only(err: sa.exc.DBAPIError) -> bool:
    detail = str(err.orig if err.orig is not None else err).lower()
    return "readonly" in detail or "read-only" in detail


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (alembic upgrade head); a no-op when up to date."""
    try:
        with _write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                # Two processes opening an empty database at once migrate one after the other.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(1246973746, 0)"))
            from alembic import command

            command.upgrade(alembic_config(conn), revision)
    except sa.exc.DBAPIError as err:
        raise _unusable(engine, err) from err


def _disk_full(err: sa.exc.DBAPIError, path: Path | None) -> bool:
    """SQLite says "database or disk is full" when it is; creating its -wal/-shm files on
    a full disk it reports only as "disk I/O error", so the free space decides then."""
    detail = str(err.orig if err.orig is not None else err).lower()
    if "disk is full" in detail or "no space left" in detail:
        return True
    if path is None or "disk i/o error" not in detail:
        return False
    try:
        return shutil.disk_usage(path.parent).free < 64 * 1024
    except OSError:
        return False


def storage_failure(engine: Engine, err: sa.exc.DBAPIError) -> StoreError | None:
    """A write the state store refused for want of space or of write access, mid-cycle, as
    a StoreError naming the file and the fix; None for any other database error."""
    path = sqlite_path(engine.url)
    if _disk_full(err, path) or _read_only(err):
        return _unusable(engine, err)
    return None


def _unusable(engine: Engine, err: sa.exc.DBAPIError) -> StoreError:
    detail = " ".join(str(err.orig if err.orig is not None else err).split())
    path = sqlite_path(engine.url)
    where = f"the state file {path}" if path else f"the state database {display_url(engine.url)}"
    if _disk_full(err, path):
        where = f"the state file {path}" if path else where
        what = (
            "the disk is full; free space there (or set [state].url to a disk with room) "
            "and run again: the last good state was kept"
        )
    elif _read_only(err):
        what = "set [state].url to a writable location, or fix the permissions"
    elif path is not None:
        what = "check the path in [state].url and its permissions"
    else:
        what = "check [state].url and that the database server is up"
    return StoreError(f"cannot use {where}: {detail}; {what}")


def _schema_state(engine: Engine) -> tuple[str | None, list[str]]:
    """The database's revision, and its tables when it has none (empty: no tables)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
            tables = sa.inspect(conn).get_table_names() if revision is None else []
    except sa.exc.DBAPIError as err:
        raise _unusable(engine, err) from err
    return revision, tables


def _prepare_schema(engine: Engine) -> None:
    if _current(engine):
        return
    revision, tables = _schema_state(engine)
    if revision is None and not tables:
        upgrade(engine)
        return
    _check_schema(engine, revision, tables)


def _check_schema(engine: Engine, revision: str | None, tables: list[str]) -> None:
    """Refuse a database that is not at this version's schema, saying what to do."""
    if revision is None:
        raise StoreError(
            f"the state database {display_url(engine.url)} holds other tables "
            f"({', '.join(sorted(tables)[:5])}) but no jira-crm-sync schema; "
            "point [state].url at an empty database or schema"
        )
    head = head_revision()
    if revision != head:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        if revision in known:
            raise StoreError(
                f"the state database {display_url(engine.url)} is at schema {revision}, this "
                f"version needs {head}: run `jira-crm-sync db upgrade`"
            )
        raise StoreError(
            f"the state database {display_url(engine.url)} is at schema {revision}, which this "
            "version does not know (written by a newer jira-crm-sync?): upgrade the program"
        )


class Store:
    """The state store: an engine plus the transactions the engine groups its writes in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def path(self) -> Path | None:
        """The SQLite file, if the store is one."""
        return sqlite_path(self.engine.url)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: committed on exit, rolled back on an exception.

        On SQLite the write lock is taken up front (BEGIN IMMEDIATE), so a writer waits
        for another (busy timeout) rather than failing half-way.
        """
        with _write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection in one consistent snapshot (for streaming loads)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def close(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def open_store_for_reading(url: str | sa.URL | None = None, **kwargs: Any) -> Store:
    """The state store for a command that writes nothing to it (``run --dry-run``,
    ``reconcile`` without ``--apply``): never created, never migrated.

    A SQLite file that does not exist, or a database without any table, is read as an
    empty store that lives in memory only (a first sync's plan); a store at another
    schema raises :class:`StoreError` asking for ``jira-crm-sync db upgrade``, as
    :func:`open_store` does: this version's queries cannot read an older schema.
    """
    url = sa.make_url(url or default_url())
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return open_store("sqlite://")
    engine = create_engine(url, **kwargs)
    if _current(engine):
        return Store(engine)
    try:
        revision, tables = _schema_state(engine)
        if revision is None and not tables:
            engine.dispose()
            return open_store("sqlite://")
        _check_schema(engine, revision, tables)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)


def open_store(url: str | sa.URL | None = None, *, migrate: bool = True, **kwargs: Any) -> Store:
    """Open the state store at ``url``, creating its schema if the database is empty.

    With ``migrate`` false the schema is left alone (``db upgrade`` and tests).
    Raises :class:`StoreError` when the database cannot be used, saying what to do.
    """
    engine = create_engine(url, **kwargs)
    if migrate:
        try:
            _prepare_schema(engine)
        except BaseException:
            engine.dispose()
            raise
    return Store(engine)
