"""The peer of `make bench`'s retention figure: shelvery decides which backups are stale.

Reads the input the bench wrote (JSON lines: a header with `now` and the keep counts, then
one backup per line: resource, id, created), turns each backup into shelvery's own model
the way shelvery reads existing backups from AWS (`BackupResource.construct` from the
backup's tags), then times only the decision shelvery's `clean_backups` makes for each
backup: `backup.is_stale(engine, RuntimeConfig.get_custom_retention_types(engine))`.

Usage: shelvery_peer.py INPUT.jsonl OUTPUT.json [REPEATS]

Writes OUTPUT.json: shelvery's version, the functions called, the wall time of each
repetition (ns), and the decision per backup in input order ("1" kept, "0" stale), with
the retention type each backup carries ("d"aily, "w"eekly, "m"onthly, "y"early).

Two things are pinned so the run is reproducible and offline:
- The clock. `is_stale` reads `datetime.now()`; the input's `now` stands in for it (a
  `datetime` subclass whose `now()` returns it, installed in shelvery's module), so both
  sides judge the same instant whatever day the bench runs.
- The engine. `is_stale` needs a `ShelveryEngine` only for `engine.lambda_payload`, where
  shelvery reads its keep counts (`config.shelvery_keep_*_backups`); constructing a real
  engine calls STS, so a namespace with the same payload stands in for it.
"""

import gc
import json
import os
import sys
import time
import types
from datetime import datetime, timezone

os.environ["TZ"] = "UTC"
time.tzset()

import shelvery  # noqa: E402
import shelvery.backup_resource as backup_resource  # noqa: E402
from shelvery.backup_resource import BackupResource  # noqa: E402
from shelvery.runtime_config import RuntimeConfig  # noqa: E402

TAG_PREFIX = "shelvery"
REGION = "us-east-1"


def retention_type(created: datetime) -> str:
    """The retention type shelvery tags a backup with when it makes it at `created`
    (BackupResource.__init__: 1 January yearly, other 1sts monthly, Sundays weekly, else
    daily). Backups made by shelvery carry it as the `<prefix>:retention_type` tag."""
    if created.day == 1:
        return BackupResource.RETENTION_YEARLY if created.month == 1 else BackupResource.RETENTION_MONTHLY
    if created.weekday() == 6:
        return BackupResource.RETENTION_WEEKLY
    return BackupResource.RETENTION_DAILY


def load(path: str):
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        backups = []
        for line in f:
            b = json.loads(line)
            created = datetime.strptime(b["created"], "%Y-%m-%dT%H:%M:%SZ")
            kind = retention_type(created)
            name = f"{b['resource']}-{created.strftime(BackupResource.TIMESTAMP_FORMAT)}-{kind}"
            tags = {
                "Name": name,
                "shelvery:tag_name": TAG_PREFIX,
                f"{TAG_PREFIX}:date_created": created.strftime(BackupResource.TIMESTAMP_FORMAT),
                f"{TAG_PREFIX}:src_account": "123456789012",
                f"{TAG_PREFIX}:name": name,
                f"{TAG_PREFIX}:region": REGION,
                f"{TAG_PREFIX}:retention_type": kind,
                f"{TAG_PREFIX}:entity_id": b["resource"],
                f"{TAG_PREFIX}:{BackupResource.BACKUP_MARKER_TAG}": "true",
            }
            backups.append(BackupResource.construct(TAG_PREFIX, b["id"], tags))
    return header, backups


def pin_clock(now: datetime) -> None:
    class PinnedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return now if tz is None else now.replace(tzinfo=timezone.utc).astimezone(tz)

    backup_resource.datetime = PinnedDatetime


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    header, backups = load(src)
    now = datetime.strptime(header["now"], "%Y-%m-%dT%H:%M:%SZ")
    keep = header["keep"]
    pin_clock(now)
    engine = types.SimpleNamespace(
        lambda_payload={
            "config": {
                "shelvery_keep_daily_backups": keep["daily"],
                "shelvery_keep_weekly_backups": keep["weekly"],
                "shelvery_keep_monthly_backups": keep["monthly"],
                "shelvery_keep_yearly_backups": keep["yearly"],
            }
        }
    )
    custom = RuntimeConfig.get_custom_retention_types

    times_ns = []
    stale = None
    for _ in range(repeats):
        gc.collect()
        gc.disable()  # as timeit does
        start = time.perf_counter_ns()
        stale = [b.is_stale(engine, custom(engine)) for b in backups]
        times_ns.append(time.perf_counter_ns() - start)
        gc.enable()

    kinds = {"daily": "d", "weekly": "w", "monthly": "m", "yearly": "y"}
    result = {
        "peer": "shelvery",
        "version": shelvery.__version__,
        "python": sys.version.split()[0],
        "called": [
            "shelvery.backup_resource.BackupResource.construct",
            "shelvery.backup_resource.BackupResource.is_stale",
            "shelvery.runtime_config.RuntimeConfig.get_custom_retention_types",
        ],
        "n": len(backups),
        "times_ns": times_ns,
        "kept": sum(1 for s in stale if not s),
        "expired": sum(1 for s in stale if s),
        "decisions": "".join("0" if s else "1" for s in stale),
        "types": "".join(kinds[b.retention_type] for b in backups),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
