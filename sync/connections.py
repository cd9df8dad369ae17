"""Several (Jira site, CRM org) pairs in one deployment: a directory of config files.

Each ``<name>.toml`` in the directory is one connection, a complete config as for
``--config``, named by its file's stem (lower-case letters, digits, ``-`` and ``_``).
``serve --connections DIR`` serves every one; ``run``, ``status``, ``report`` and
``reconcile`` take ``--connection NAME`` (with ``--connections DIR`` or
``$JIRA_CRM_SYNC_CONNECTIONS``) to work on one.

Each connection has its own state namespace (:func:`namespaced_url`): on PostgreSQL the
schema ``jcs_<name>`` of the database its ``[state] url`` names (``<schema>_<name>`` when
that URL sets a search_path), created on first use; on SQLite its own file
(``<name>.db`` beside the default state file when ``[state] url`` is unset). So its
cursors, outbox, ledger and API budget (``api_usage``, counted in the database for every
worker) are its own, and its ``[limits]`` and ``[schedule]`` apply to it alone.

A connection whose file cannot be loaded (a bad name, a config problem, a state file
another connection uses) is :class:`Broken`: reported, and skipped by ``serve``, never a
reason to stop the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from sync.config import Config, ConfigFileError, load_config
from sync.store.db import StoreError, default_state_path, display_url, sqlite_path

#: A connection's name: its file's stem.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([^\s]+)")


class ConnectionsError(Exception):
    """A connection cannot be found or loaded (a config problem: exit 2)."""


@dataclass(frozen=True)
class Loaded:
    """A connection's config, its ``[state] url`` rewritten to the connection's namespace."""

    name: str
    path: Path
    config: Config
    #: the ``[state] url`` as written (PostgreSQL: the deployment's queue lives there)
    base_url: str | None


@dataclass(frozen=True)
class Broken:
    """A connection that could not be loaded, and why."""

    name: str
    path: Path
    reason: str


@dataclass
class Directory:
    """What a connections directory holds."""

    path: Path
    connections: list[Loaded] = field(default_factory=list)
    broken: list[Broken] = field(default_factory=list)

    def names(self) -> list[str]:
        """Every connection's name, loaded or not."""
        return sorted([c.name for c in self.connections] + [b.name for b in self.broken])


def schema_name(name: str, base: str | None = None) -> str:
    """The PostgreSQL schema of connection ``name``."""
    safe = name.replace("-", "_")
    return f"{base}_{safe}" if base else f"jcs_{safe}"


def namespaced_url(url: str | None, name: str) -> str:
    """``url`` (a ``[state] url``; None: the default) for connection ``name``'s own state."""
    if url is None:
        return f"sqlite:///{default_state_path().with_name(f'{name}.db')}"
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url  # a file of its own already (two sharing one are refused by load_directory)
    options = str(parsed.query.get("options") or "")
    found = _SEARCH_PATH.search(options)
    schema = schema_name(name, found.group(1) if found else None)
    rest = _SEARCH_PATH.sub("", options).strip()
    options = f"{rest} -csearch_path={schema}".strip()
    return str(parsed.update_query_dict({"options": options}).render_as_string(hide_password=False))


def ensure_namespace(url: str) -> None:
    """Create the connection's PostgreSQL schema if it is not there (nothing on SQLite).
    A server that cannot be reached is left to the store to report; one that refuses is
    a :class:`~sync.store.StoreError` naming the schema and the fix."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    found = _SEARCH_PATH.search(str(parsed.query.get("options") or ""))
    if found is None:
        return
    engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{found.group(1)}"')
    except sa.exc.OperationalError:
        pass
    except sa.exc.DBAPIError as exc:
        why = (str(exc.orig).splitlines() or ["refused"])[0]
        raise StoreError(
            f"cannot create the schema {found.group(1)} of this connection in "
            f"{display_url(parsed)}: {why}; create it, or grant CREATE on the database to "
            "the user of [state] url"
        ) from None
    finally:
        engine.dispose()


def load_connection(path: Path, name: str | None = None) -> Loaded:
    """One connection's file, loaded and namespaced (ConfigFileError for its config's
    problems, ConnectionsError for a bad name)."""
    name = name or path.stem
    if not NAME.match(name):
        raise ConnectionsError(
            f"{path}: {name!r} is no connection name: use lower-case letters, digits, '-' "
            "and '_' (at most 40), starting with a letter or digit; rename the file"
        )
    config = load_config(path)
    url = namespaced_url(config.state.url, name)
    state = config.state.model_copy(update={"url": url})
    return Loaded(name, path, config.model_copy(update={"state": state}), config.state.url)


def find_connection(directory: Path | None, name: str) -> Loaded:
    """Connection ``name`` of ``directory`` (ConnectionsError naming what to do)."""
    if directory is None:
        raise ConnectionsError(
            f"--connection {name} needs the connections directory: give --connections DIR "
            "or set JIRA_CRM_SYNC_CONNECTIONS"
        )
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.toml"))) or "none"
        raise ConnectionsError(
            f"no connection {name!r} in {directory} (no {path.name}; connections there: {known})"
        )
    return load_connection(path, name)


def load_directory(directory: Path) -> Directory:
    """Every ``*.toml`` of ``directory`` as a connection; those that cannot be loaded are
    :class:`Broken` (ConnectionsError only when the directory itself is missing or empty)."""
    if not directory.is_dir():
        raise ConnectionsError(
            f"--connections {directory}: no such directory; give the directory that holds "
            "one <name>.toml per connection"
        )
    found = Directory(directory)
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ConnectionsError(
            f"--connections {directory}: no *.toml in it; put one config file per "
            "connection there (named <name>.toml)"
        )
    stores: dict[str, str] = {}
    for path in files:
        try:
            loaded = load_connection(path)
        except ConfigFileError as exc:
            found.broken.append(Broken(path.stem, path, str(exc)))
            continue
        except ConnectionsError as exc:
            found.broken.append(Broken(path.stem, path, str(exc)))
            continue
        state = str(loaded.config.state.url)
        sqlite = sqlite_path(state)
        key = str(sqlite.resolve()) if sqlite is not None else state
        if key in stores:
            found.broken.append(
                Broken(
                    loaded.name,
                    path,
                    f"its state ({display_url(state)}) is connection {stores[key]!r}'s; give "
                    "each connection its own [state] url (or leave it unset)",
                )
            )
            continue
        stores[key] = loaded.name
        found.connections.append(loaded)
    return found
