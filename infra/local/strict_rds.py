"""The strict local stack: the RDS behaviours of AWS that moto 5.2.5 leaves out.

moto answers every RDS call at once: a deleted instance is gone and its name free,
snapshots and restores are ``available`` immediately, a cluster restored from a snapshot
hands out an endpoint with no instance behind it. Lifeboat's safety depends on the AWS
behaviour, so the local stack installs these hooks on moto's RDS backend (in-process,
before the server starts; :func:`install`):

* Deletes are asynchronous. ``DeleteDBInstance`` / ``DeleteDBCluster`` leave the
  resource ``deleting`` under its identifier for ``delete_s``; meanwhile creating,
  restoring or renaming onto that identifier fails with ``DBInstanceAlreadyExists`` /
  ``DBClusterAlreadyExistsFault``, and deleting it again with ``InvalidDBInstanceState``
  / ``InvalidDBClusterStateFault``. A deleting member no longer keeps its cluster alive.
* Without ``DeleteAutomatedBackups=false`` a delete removes the automated backups (moto
  does it for instances; here for clusters too). ``SkipFinalSnapshot`` or a
  ``FinalDBSnapshotIdentifier`` is required, as on AWS; the final snapshot is
  ``creating`` first.
* Snapshots are ``creating``, copies ``copying``, new and restored instances and clusters
  ``creating``, for ``available_s`` before ``available``. A snapshot, copy or restore
  from a snapshot that is not ``available`` fails (``InvalidDBSnapshotState`` /
  ``InvalidDBClusterSnapshotStateFault``); so does a snapshot of an instance or cluster
  that is not ``available``.
* ``ModifyDBInstance NewDBInstanceIdentifier`` / ``ModifyDBCluster
  NewDBClusterIdentifier`` with ``ApplyImmediately``: the resource is ``renaming`` under
  its old identifier for ``rename_s`` (the new one is taken already), then ``available``
  under the new one, its automated backups and cluster members following it. The new
  identifier must be free (deleting resources and other renames count). Without
  ``ApplyImmediately`` AWS waits for the maintenance window: here the rename never
  happens.
* A cluster has no ``Endpoint`` / ``ReaderEndpoint`` until a writer instance in it is
  ``available``. (AWS prints the DNS names of an empty cluster, but nothing answers
  there; leaving them out makes code that would hand them out see none.)

Transitions are applied when the next RDS request arrives (no timer thread), under one
lock that also serialises RDS requests, so they never race with moto's own changes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DELETE_S = 5.0
DEFAULT_AVAILABLE_S = 2.0
DEFAULT_RENAME_S = 2.0

ENV_DELETE = "LIFEBOAT_STRICT_DELETE_SECONDS"
ENV_AVAILABLE = "LIFEBOAT_STRICT_AVAILABLE_SECONDS"
ENV_RENAME = "LIFEBOAT_STRICT_RENAME_SECONDS"


@dataclass(frozen=True)
class Timings:
    """How long each transition takes, in seconds."""

    delete_s: float = DEFAULT_DELETE_S
    available_s: float = DEFAULT_AVAILABLE_S
    rename_s: float = DEFAULT_RENAME_S

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Timings:
        env = dict(os.environ) if env is None else env

        def seconds(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
            if value < 0:
                raise ValueError(f"{name}={raw!r} is negative")
            return value

        return cls(
            delete_s=seconds(ENV_DELETE, DEFAULT_DELETE_S),
            available_s=seconds(ENV_AVAILABLE, DEFAULT_AVAILABLE_S),
            rename_s=seconds(ENV_RENAME, DEFAULT_RENAME_S),
        )


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Strict:
    """The installed hooks' state: timings, clock, pending transitions, reserved names."""

    def __init__(self, timings: Timings, clock: Callable[[], float] = time.monotonic) -> None:
        self.timings = timings
        self.clock = clock
        self.lock = threading.RLock()
        self._due: list[_Due] = []
        self._seq = 0
        # (account, region, kind, identifier) of renames in progress: the new names.
        self.reserved: set[tuple[str, str, str, str]] = set()

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        """Run `action` once `seconds` have passed (at the next RDS request)."""
        with self.lock:
            self._seq += 1
            self._due.append(_Due(self.clock() + seconds, self._seq, action))
            if seconds <= 0:
                self.apply_due()

    def apply_due(self) -> None:
        """Run every transition whose time has come, oldest first."""
        with self.lock:
            now = self.clock()
            ready = sorted(d for d in self._due if d.at <= now)
            self._due = [d for d in self._due if d.at > now]
            for due in ready:
                due.action()


_installed: dict[str, Any] = {}


def _rds_error(code: str, message: str) -> Exception:
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(code, message)


def _key(backend: Any, kind: str, identifier: str) -> tuple[str, str, str, str]:
    return (backend.account_id, backend.region_name, kind, identifier.lower())


def install(timings: Timings | None = None, clock: Callable[[], float] = time.monotonic) -> Strict:
    """Patch moto's RDS backend (once per process; later calls change timings and clock)."""
    from moto.rds import models, responses

    strict = Strict(timings or Timings.from_env(), clock)
    if _installed:
        _installed["strict"] = strict
        return strict
    _installed["strict"] = strict

    def current() -> Strict:
        return _installed["strict"]

    backend_cls = models.RDSBackend
    cluster_cls = models.DBCluster
    originals = {
        name: getattr(backend_cls, name)
        for name in (
            "create_db_instance",
            "create_db_cluster",
            "create_db_snapshot",
            "copy_db_snapshot",
            "create_db_cluster_snapshot",
            "copy_db_cluster_snapshot",
            "restore_db_instance_from_db_snapshot",
            "restore_db_cluster_from_snapshot",
            "restore_db_instance_to_point_in_time",
            "delete_db_instance",
            "delete_db_cluster",
            "modify_db_instance",
            "modify_db_cluster",
        )
    }
    call_action = responses.RDSResponse.call_action

    # -- every RDS request: due transitions first, one request at a time ------------

    def strict_call_action(self: Any) -> Any:
        s = current()
        with s.lock:
            s.apply_due()
            return call_action(self)

    responses.RDSResponse.call_action = strict_call_action

    # -- statuses ------------------------------------------------------------------

    def becomes_available(obj: Any, *from_states: str) -> None:
        def done() -> None:
            if obj.status in from_states:
                obj.status = "available"

        current().after(current().timings.available_s, done)

    # moto's DBCluster flips `creating` to `available` on its first read.
    def cluster_status(self: Any) -> str:
        return self._status

    def set_cluster_status(self: Any, value: str) -> None:
        self._status = value

    cluster_cls.status = property(cluster_status, set_cluster_status)

    # Deleting instances are no longer members; no endpoint without an available writer.
    def members(self: Any) -> list[Any]:
        return [
            db
            for db in self.backend.databases.values()
            if isinstance(db, models.DBInstanceClustered)
            and db.db_cluster_identifier == self.resource_id
            and db.status != "deleting"
        ]

    cluster_cls._members = property(members)
    endpoint = cluster_cls.endpoint
    reader_endpoint = cluster_cls.reader_endpoint

    def has_available_writer(cluster: Any) -> bool:
        return any(m.is_cluster_writer and m.status == "available" for m in cluster.members)

    def strict_endpoint(self: Any) -> str | None:
        return endpoint.fget(self) if has_available_writer(self) else None

    def strict_reader_endpoint(self: Any) -> str | None:
        return reader_endpoint.fget(self) if has_available_writer(self) else None

    cluster_cls.endpoint = property(strict_endpoint)
    cluster_cls.reader_endpoint = property(strict_reader_endpoint)

    # -- names -------------------------------------------------------------------------

    def instance_name_taken(backend: Any, identifier: str) -> bool:
        return identifier.lower() in {k.lower() for k in backend.databases} or _key(
            backend, "instance", identifier
        ) in current().reserved

    def cluster_name_taken(backend: Any, identifier: str) -> bool:
        return identifier.lower() in {k.lower() for k in backend.clusters} or _key(
            backend, "cluster", identifier
        ) in current().reserved

    def instance_exists() -> Exception:
        return _rds_error("DBInstanceAlreadyExists", "DB instance already exists")

    def cluster_exists() -> Exception:
        return _rds_error("DBClusterAlreadyExistsFault", "DB cluster already exists")

    # -- creations and restores --------------------------------------------------------

    def create_db_instance(self: Any, db_kwargs: dict[str, Any]) -> Any:
        if instance_name_taken(self, db_kwargs["db_instance_identifier"]):
            raise instance_exists()
        cluster_id = db_kwargs.get("db_cluster_identifier")
        if cluster_id and cluster_id in self.clusters:
            if self.clusters[cluster_id].status == "deleting":
                raise _rds_error(
                    "InvalidDBClusterStateFault", f"DB cluster {cluster_id} is being deleted."
                )
        database = originals["create_db_instance"](self, db_kwargs)
        database.status = "creating"
        becomes_available(database, "creating")
        return database

    def create_db_cluster(self: Any, kwargs: dict[str, Any]) -> Any:
        if cluster_name_taken(self, kwargs["db_cluster_identifier"]):
            raise cluster_exists()
        cluster = originals["create_db_cluster"](self, kwargs)
        cluster.status = "creating"
        becomes_available(cluster, "creating")
        return cluster

    def create_db_snapshot(
        self: Any, db_instance_identifier: str, db_snapshot_identifier: str, *args: Any, **kw: Any
    ) -> Any:
        database = self.databases.get(db_instance_identifier)
        automated = (args[0] if args else kw.get("snapshot_type")) == "automated"
        if database is not None and database.status != "available" and not automated:
            raise _rds_error(
                "InvalidDBInstanceState",
                f"Cannot create a snapshot because the database instance "
                f"{db_instance_identifier} is not currently in the available state.",
            )
        snapshot = originals["create_db_snapshot"](
            self, db_instance_identifier, db_snapshot_identifier, *args, **kw
        )
        snapshot.status = "creating"
        becomes_available(snapshot, "creating")
        return snapshot

    def create_db_cluster_snapshot(
        self: Any, db_cluster_identifier: str, db_cluster_snapshot_identifier: str, *args: Any, **kw: Any
    ) -> Any:
        cluster = self.clusters.get(db_cluster_identifier)
        automated = (args[0] if args else kw.get("snapshot_type")) == "automated"
        if cluster is not None and cluster.status != "available" and not automated:
            raise _rds_error(
                "InvalidDBClusterStateFault",
                f"Cannot create a snapshot because the DB cluster {db_cluster_identifier} "
                "is not currently in the available state.",
            )
        snapshot = originals["create_db_cluster_snapshot"](
            self, db_cluster_identifier, db_cluster_snapshot_identifier, *args, **kw
        )
        snapshot.status = "creating"
        becomes_available(snapshot, "creating")
        return snapshot

    def require_available_snapshot(snapshot: Any, cluster: bool) -> None:
        if snapshot.status == "available":
            return
        if cluster:
            raise _rds_error(
                "InvalidDBClusterSnapshotStateFault",
                f"DB cluster snapshot {snapshot.db_cluster_snapshot_identifier} is not in "
                f"the available state (it is {snapshot.status}).",
            )
        raise _rds_error(
            "InvalidDBSnapshotState",
            f"DB snapshot {snapshot.db_snapshot_identifier} is not in the available state "
            f"(it is {snapshot.status}).",
        )

    def copy_db_snapshot(
        self: Any, source_db_snapshot_identifier: str, target_db_snapshot_identifier: str, *args: Any, **kw: Any
    ) -> Any:
        require_available_snapshot(self.get_db_snapshot(source_db_snapshot_identifier), cluster=False)
        snapshot = originals["copy_db_snapshot"](
            self, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kw
        )
        snapshot.status = "copying"
        becomes_available(snapshot, "copying")
        return snapshot

    def copy_db_cluster_snapshot(
        self: Any,
        source_db_cluster_snapshot_identifier: str,
        target_db_cluster_snapshot_identifier: str,
        *args: Any,
        **kw: Any,
    ) -> Any:
        require_available_snapshot(
            self.get_db_cluster_snapshot(source_db_cluster_snapshot_identifier), cluster=True
        )
        snapshot = originals["copy_db_cluster_snapshot"](
            self,
            source_db_cluster_snapshot_identifier,
            target_db_cluster_snapshot_identifier,
            *args,
            **kw,
        )
        snapshot.status = "copying"
        becomes_available(snapshot, "copying")
        return snapshot

    def restore_db_instance_from_db_snapshot(
        self: Any, from_snapshot_id: str, overrides: dict[str, Any]
    ) -> Any:
        name = from_snapshot_id
        if name.startswith("arn:aws:rds:"):
            name = self.extract_snapshot_name_from_arn(name)
        snapshot = self.describe_db_snapshots(
            db_instance_identifier=None, db_snapshot_identifier=name
        )[0]
        require_available_snapshot(snapshot, cluster=False)
        if instance_name_taken(self, overrides["db_instance_identifier"]):
            raise instance_exists()
        return originals["restore_db_instance_from_db_snapshot"](self, from_snapshot_id, overrides)

    def restore_db_cluster_from_snapshot(
        self: Any, from_snapshot_id: str, overrides: dict[str, Any]
    ) -> Any:
        snapshot = self.describe_db_cluster_snapshots(
            db_cluster_identifier=None, db_snapshot_identifier=from_snapshot_id
        )[0]
        require_available_snapshot(snapshot, cluster=True)
        if cluster_name_taken(self, overrides["db_cluster_identifier"]):
            raise cluster_exists()
        return originals["restore_db_cluster_from_snapshot"](self, from_snapshot_id, overrides)

    def restore_db_instance_to_point_in_time(
        self: Any, source_db_identifier: str, target_db_identifier: str, overrides: dict[str, Any]
    ) -> Any:
        source = self.databases.get(source_db_identifier)
        if source is not None and source.status == "deleting":
            raise _rds_error(
                "InvalidDBInstanceState",
                f"DB instance {source_db_identifier} is being deleted.",
            )
        if instance_name_taken(self, target_db_identifier):
            raise instance_exists()
        return originals["restore_db_instance_to_point_in_time"](
            self, source_db_identifier, target_db_identifier, overrides
        )

    # -- deletes --------------------------------------------------------------------------

    def require_final_snapshot_choice(skip: Any, final: Any) -> None:
        if not skip and not final:
            raise _rds_error(
                "InvalidParameterCombination",
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
            )

    def delete_db_instance(
        self: Any,
        db_instance_identifier: str,
        final_db_snapshot_identifier: str | None = None,
        skip_final_snapshot: bool | None = False,
        delete_automated_backups: bool | None = True,
        **_: Any,
    ) -> Any:
        database = self.databases.get(db_instance_identifier)
        if database is not None:
            if database.status == "deleting":
                raise _rds_error(
                    "InvalidDBInstanceState",
                    f"Instance {db_instance_identifier} is already being deleted.",
                )
            if database.db_cluster_identifier is None:
                require_final_snapshot_choice(skip_final_snapshot, final_db_snapshot_identifier)
        deleted = originals["delete_db_instance"](
            self,
            db_instance_identifier,
            final_db_snapshot_identifier=final_db_snapshot_identifier,
            skip_final_snapshot=skip_final_snapshot,
            delete_automated_backups=(
                True if delete_automated_backups is None else delete_automated_backups
            ),
        )
        deleted.status = "deleting"
        self.databases[db_instance_identifier] = deleted

        def gone() -> None:
            if self.databases.get(db_instance_identifier) is deleted:
                del self.databases[db_instance_identifier]

        current().after(current().timings.delete_s, gone)
        return deleted

    def delete_db_cluster(self: Any, params: Any) -> Any:
        cluster_id = params.get("DBClusterIdentifier")
        final = params.get("FinalDBSnapshotIdentifier")
        skip = params.get("SkipFinalSnapshot")
        keep_backups = params.get("DeleteAutomatedBackups") is False
        cluster = self.clusters.get(cluster_id)
        if cluster is not None and cluster.status == "deleting":
            raise _rds_error(
                "InvalidDBClusterStateFault", f"DB cluster {cluster_id} is already being deleted."
            )
        if cluster is not None:
            require_final_snapshot_choice(skip, final)
        deleted = originals["delete_db_cluster"](
            self, cluster_identifier=cluster_id, snapshot_name=None if skip else final
        )
        if not keep_backups:
            for snapshot_id, snapshot in list(self.cluster_snapshots.items()):
                if (
                    snapshot.snapshot_type == "automated"
                    and snapshot.cluster.db_cluster_identifier == deleted.db_cluster_identifier
                ):
                    del self.cluster_snapshots[snapshot_id]
        deleted.status = "deleting"
        self.clusters[cluster_id] = deleted

        def gone() -> None:
            if self.clusters.get(cluster_id) is deleted:
                del self.clusters[cluster_id]

        current().after(current().timings.delete_s, gone)
        return deleted

    def delete_db_cluster_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        return ActionResult({"DBCluster": delete_db_cluster(self.backend, self.params)})

    responses.RDSResponse.delete_db_cluster = delete_db_cluster_response

    # -- renames --------------------------------------------------------------------------

    def modify_db_instance(self: Any, db_instance_identifier: str, db_kwargs: Any) -> Any:
        database = self.describe_db_instances(db_instance_identifier)[0]
        if database.status == "deleting":
            raise _rds_error(
                "InvalidDBInstanceState", f"Instance {db_instance_identifier} is being deleted."
            )
        new_id = db_kwargs.pop("new_db_instance_identifier", None)
        if new_id is not None and new_id.lower() != db_instance_identifier.lower():
            if instance_name_taken(self, new_id):
                raise instance_exists()
        else:
            new_id = None
        status = database.status
        database = originals["modify_db_instance"](self, db_instance_identifier, db_kwargs)
        database.status = status
        if new_id is not None and db_kwargs.get("apply_immediately"):
            rename_instance(self, database, db_instance_identifier, new_id)
        return database

    def rename_instance(backend: Any, database: Any, old_id: str, new_id: str) -> None:
        key = _key(backend, "instance", new_id)
        current().reserved.add(key)
        database.status = "renaming"

        def done() -> None:
            current().reserved.discard(key)
            if backend.databases.get(old_id) is not database:
                return
            del backend.databases[old_id]
            database.db_instance_identifier = new_id
            backend.databases[new_id] = database
            # Automated backups follow the instance (AWS keys them by its resource id); moto
            # names them after the instance, so they are renamed too.
            prefix = f"rds:{old_id}-".lower()
            for snapshot_id, snapshot in list(backend.database_snapshots.items()):
                if (
                    snapshot.snapshot_type == "automated"
                    and snapshot.dbi_resource_id == database.dbi_resource_id
                ):
                    snapshot.db_instance_identifier = new_id
                    if snapshot_id.startswith(prefix):
                        renamed = f"rds:{new_id}-{snapshot_id[len(prefix):]}"
                        del backend.database_snapshots[snapshot_id]
                        snapshot.db_snapshot_identifier = renamed
                        backend.database_snapshots[snapshot.db_snapshot_identifier] = snapshot
            if database.status == "renaming":
                database.status = "available"

        current().after(current().timings.rename_s, done)

    def modify_db_cluster(self: Any, kwargs: Any) -> Any:
        cluster_id = kwargs["db_cluster_identifier"]
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise models.DBClusterNotFoundError(cluster_id)
        if cluster.status == "deleting":
            raise _rds_error(
                "InvalidDBClusterStateFault", f"DB cluster {cluster_id} is being deleted."
            )
        new_id = kwargs.pop("new_db_cluster_identifier", None)
        if new_id is not None and new_id.lower() != cluster_id.lower():
            if cluster_name_taken(self, new_id):
                raise cluster_exists()
        else:
            new_id = None
        status = cluster.status
        shown = originals["modify_db_cluster"](self, kwargs)
        cluster.status = status
        shown.status = status
        if new_id is not None and kwargs.get("apply_immediately"):
            rename_cluster(self, cluster, cluster_id, new_id)
            shown.status = "renaming"
        return shown

    def rename_cluster(backend: Any, cluster: Any, old_id: str, new_id: str) -> None:
        key = _key(backend, "cluster", new_id)
        current().reserved.add(key)
        cluster.status = "renaming"

        def done() -> None:
            current().reserved.discard(key)
            if backend.clusters.get(old_id) is not cluster:
                return
            members = list(cluster.members)
            del backend.clusters[old_id]
            cluster.db_cluster_identifier = new_id
            backend.clusters[new_id] = cluster
            for member in members:
                member.db_cluster_identifier = new_id
            for snapshot in backend.cluster_snapshots.values():
                if snapshot.snapshot_type == "automated" and snapshot.cluster.resource_id == old_id:
                    snapshot.cluster.db_cluster_identifier = new_id
            if cluster.status == "renaming":
                cluster.status = "available"

        current().after(current().timings.rename_s, done)

    for name, fn in {
        "create_db_instance": create_db_instance,
        "create_db_cluster": create_db_cluster,
        "create_db_snapshot": create_db_snapshot,
        "copy_db_snapshot": copy_db_snapshot,
        "create_db_cluster_snapshot": create_db_cluster_snapshot,
        "copy_db_cluster_snapshot": copy_db_cluster_snapshot,
        "restore_db_instance_from_db_snapshot": restore_db_instance_from_db_snapshot,
        "restore_db_cluster_from_snapshot": restore_db_cluster_from_snapshot,
        "restore_db_instance_to_point_in_time": restore_db_instance_to_point_in_time,
        "delete_db_instance": delete_db_instance,
        "modify_db_instance": modify_db_instance,
        "modify_db_cluster": modify_db_cluster,
    }.items():
        setattr(backend_cls, name, fn)
    return strict
