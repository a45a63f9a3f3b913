"""Generation jobs in the `queue_jobs` table: plain functions that create, read, move through
the status flow and delete them (no HTTP, no ComfyUI)."""
from __future__ import annotations

import json
import re
from typing import Any

from sqlite_utils import Database

from .errors import Conflict, Invalid, NotFound

PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED = (
    "pending", "processing", "completed", "failed", "cancelled")
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED)
ACTIVE = (PENDING, PROCESSING)
_JSON = ("params", "workflow", "progress", "outputs", "attached")
_COLUMNS = ("id, status, server_alias, server_url, client_id, prompt_id, template, params, "
            "workflow, attach_to, progress, error, outputs, attached, retry_count, created_at, "
            "updated_at, started_at, completed_at")
_ID = re.compile(r"[0-9a-f]{32}")


def output_url(job_id: str, index: int) -> str:
    return f"/api/v1/queue/jobs/{job_id}/outputs/{index}"


def check_id(job_id: str) -> str:
    if not _ID.fullmatch(job_id):
        raise Invalid("A queue job id is 32 lowercase hexadecimal characters",
                      code="INVALID_JOB_ID", field="id")
    return job_id


def insert_job(db: Database, row: dict) -> dict:
    values = {key: json.dumps(value) if key in _JSON else value for key, value in row.items()}
    db["queue_jobs"].insert(values)
    return get_job(db, row["id"])


def row_of(db: Database, job_id: str) -> dict:
    """The stored row with its JSON columns decoded (internal fields included)."""
    check_id(job_id)
    cursor = db.execute(f"SELECT {_COLUMNS} FROM queue_jobs WHERE id = ?", [job_id])
    found = cursor.fetchone()
    if found is None:
        raise NotFound(f"No queue job {job_id}", code="JOB_NOT_FOUND", id=job_id)
    row = dict(zip([c[0] for c in cursor.description], found))
    return {key: json.loads(value) if key in _JSON else value for key, value in row.items()}


def record(row: dict, with_workflow: bool = True) -> dict:
    """A job as the API shows it."""
    shown = {
        "job_id": row["id"], "status": row["status"], "target_server_alias": row["server_alias"],
        "server_url": row["server_url"], "prompt_id": row["prompt_id"],
        "template": row["template"], "params": row["params"], "attach_to": row["attach_to"],
        "progress": row["progress"], "error": row["error"] or None,
        "outputs": [{**o, "url": output_url(row["id"], o["index"])} for o in row["outputs"]],
        "attached_images": row["attached"], "retry_count": row["retry_count"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "started_at": row["started_at"], "completed_at": row["completed_at"],
    }
    if with_workflow:
        shown["workflow"] = row["workflow"]
    return shown


def get_job(db: Database, job_id: str) -> dict:
    return record(row_of(db, job_id))


def list_jobs(db: Database, status: str | None, limit: int, offset: int, order: str) -> dict:
    where, args = ("WHERE status = ?", [status]) if status else ("", [])
    total = db.execute(f"SELECT count(*) FROM queue_jobs {where}", args).fetchone()[0]
    direction = "ASC" if order == "asc" else "DESC"
    cursor = db.execute(f"SELECT {_COLUMNS} FROM queue_jobs {where} ORDER BY created_at "
                        f"{direction}, id {direction} LIMIT ? OFFSET ?", [*args, limit, offset])
    names = [c[0] for c in cursor.description]
    rows = [{k: json.loads(v) if k in _JSON else v for k, v in zip(names, r)} for r in cursor]
    return {"total": total, "jobs": [record(r, with_workflow=False) for r in rows]}


def stats(db: Database) -> dict:
    counts = dict(db.execute("SELECT status, count(*) FROM queue_jobs GROUP BY status").fetchall())
    found = {status: counts.get(status, 0) for status in STATUSES}
    return {**found, "total": sum(found.values())}


def active_ids(db: Database) -> list[str]:
    placeholders = ",".join("?" * len(ACTIVE))
    return [r[0] for r in db.execute(f"SELECT id FROM queue_jobs WHERE status IN ({placeholders}) "
                                     "ORDER BY created_at", list(ACTIVE))]


def update(db: Database, job_id: str, now_ms: int, *, only_if: tuple[str, ...] = ACTIVE,
           **fields: Any) -> dict | None:
    """Set fields of a job still in one of the `only_if` states; returns the new row, or None
    when it has moved on (a cancel won the race with the dispatcher, or the other way round)."""
    values = {key: json.dumps(value) if key in _JSON else value for key, value in fields.items()}
    values["updated_at"] = now_ms
    assignments = ", ".join(f"{key} = ?" for key in values)
    placeholders = ",".join("?" * len(only_if))
    with db.atomic():
        changed = db.execute(f"UPDATE queue_jobs SET {assignments} WHERE id = ? AND status IN "
                             f"({placeholders})", [*values.values(), job_id, *only_if]).rowcount
        return row_of(db, job_id) if changed else None


def delete_job(db: Database, job_id: str) -> dict:
    """Remove a finished job's record; returns it (the caller removes its output files)."""
    with db.atomic():
        row = row_of(db, job_id)
        if row["status"] in ACTIVE:
            raise Conflict(f"Job {job_id} is still {row['status']}; cancel it first",
                           code="JOB_ACTIVE", id=job_id, status=row["status"])
        db.execute("DELETE FROM queue_jobs WHERE id = ?", [job_id])
    return row
