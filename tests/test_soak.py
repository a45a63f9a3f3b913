"""The concurrency soak: 8 clients edit, tag, upload and list against one manager process for
60 s ($HIKAZE_SOAK_SECONDS shortens it locally) while scans and hash jobs run; then every
acknowledged write is checked in the library."""
from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.factories import png_bytes, write_safetensors
from tests.fault_data import SETTLED, sparse_models
from tests.processes import Manager, library_problems, open_library, record_figures, upload_form

CLIENTS = 8
MODELS_PER_CLIENT = 4
SECONDS = float(os.environ.get("HIKAZE_SOAK_SECONDS", "60"))


@dataclass
class Client:
    """One client's loop and what the manager acknowledged to it."""

    number: int
    manager: Manager
    owned: list[str]
    shared: str
    statuses: Counter = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # model → last acknowledged notes
    tags: dict[str, str] = field(default_factory=dict)  # model → its acknowledged tag set (one)
    shared_value: int | None = None  # the last acknowledged meta.soak.c<n> of the shared model
    images: list[tuple[str, str]] = field(default_factory=list)  # (model, image sha256)
    acknowledged: int = 0

    def run(self, until: float) -> None:
        step = 0
        while time.monotonic() < until:
            step += 1
            model = self.owned[step % len(self.owned)]
            operation = (self.patch, self.patch_shared, self.tag, self.upload, self.list)[step % 5]
            operation(model, step)

    def call(self, method: str, path: str, body: object = None, **kw) -> object | None:
        try:
            status, answer = self.manager.call(method, path, body, timeout=120, **kw)
        except OSError as exc:
            self.bad.append(f"{method} {path}: {exc}")
            return None
        self.statuses[status] += 1
        text = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        if status >= 400 or b"database is locked" in text:
            self.bad.append(f"{method} {path} → {status}: {text[:300]!r}")
            return None
        return answer

    def patch(self, model: str, step: int) -> None:
        notes = f"client {self.number} write {step}"
        if self.call("PATCH", f"/api/models/{model}", {"meta_json": {"notes": notes}}):
            self.notes[model] = notes
            self.acknowledged += 1

    def patch_shared(self, model: str, step: int) -> None:
        body = {"meta_json": {"soak": {f"c{self.number}": step}}}
        if self.call("PATCH", f"/api/models/{self.shared}", body):
            self.shared_value = step
            self.acknowledged += 1

    def tag(self, model: str, step: int) -> None:
        name = f"soak c{self.number} s{step}"
        added = self.call("POST", "/api/tags_add", {"newtags": [name]})
        if added and self.call("PATCH", f"/api/models/{model}", {"tags": [added["tags"][0]["id"]]}):
            self.tags[model] = name
            self.acknowledged += 1

    def upload(self, model: str, step: int) -> None:
        picture = png_bytes(size=(64 + step % 64, 48), colour=(self.number * 30, step % 256,
                                                               step // 256 % 256))
        body, headers = upload_form({"sha256": model}, picture)
        answer = self.call("POST", "/api/images/upload", data=body, headers=headers)
        if answer:
            self.images.append((model, answer["image"]["image_sha256"]))
            self.acknowledged += 1

    def list(self, model: str, step: int) -> None:
        path = ("/api/models", "/api/tags", f"/api/models/{model}")[step % 3]
        self.call("GET", path)


def background_disk_work(manager: Manager, models: Path, until: float, report: Counter) -> None:
    """New big files and a scan every few seconds, so scans and hash jobs run all along."""
    while time.monotonic() < until:
        sparse_models(models, 1, 128, prefix=f"soak{report['scans']}_")
        status, answer = manager.call("POST", "/api/scan", timeout=120)
        report["scans"] += 1
        report[f"scan {status}"] += 1
        if status == 200 and answer["hash_job"]:
            report["hash jobs"] += 1
        time.sleep(2)


def test_eight_clients_for_a_minute_lose_nothing_and_never_see_a_5xx(tmp_path):
    models, data = tmp_path / "models", tmp_path / "data"
    count = CLIENTS * MODELS_PER_CLIENT + 1
    for i in range(count):
        path = models / "loras" / f"s{i:02d}.safetensors"
        write_safetensors(path, 9000 + i)
        os.utime(path, (SETTLED, SETTLED))
    (models / "checkpoints").mkdir()  # where the background work adds files during the soak
    manager = Manager.launch(data, models)
    try:
        manager.scan_and_import()
        shas = sorted(model["sha256"] for model in
                      manager.json("GET", "/api/models?limit=1000")["models"])
        assert len(shas) == count
        clients = [Client(n, manager, shas[n * MODELS_PER_CLIENT:(n + 1) * MODELS_PER_CLIENT],
                          shas[-1]) for n in range(CLIENTS)]
        until, disk = time.monotonic() + SECONDS, Counter()
        threads = [threading.Thread(target=client.run, args=(until,)) for client in clients]
        threads.append(threading.Thread(target=background_disk_work,
                                        args=(manager, models, until, disk)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SECONDS + 180)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
    finally:
        manager.stop()
    log = manager.log()
    assert [bad for client in clients for bad in client.bad] == []
    assert disk["scans"] > 0 and disk["scan 200"] == disk["scans"], disk
    assert "database is locked" not in log and "Traceback" not in log
    assert library_problems(data) == []
    verified = verify(data, clients)
    statuses = sum((client.statuses for client in clients), Counter())
    record_figures("soak", seconds=SECONDS, clients=CLIENTS, requests=sum(statuses.values()),
                   statuses=dict(statuses), acknowledged_writes=sum(c.acknowledged for c in clients),
                   final_states_verified=verified, scans=disk["scans"], hash_jobs=disk["hash jobs"])


def verify(data: Path, clients: list[Client]) -> int:
    """Check each client's acknowledged writes against the library; returns the checks made."""
    with open_library(data) as db:
        meta = {sha: json.loads(m) for sha, m in db.execute("SELECT sha256, meta FROM models")}
        tags = {}
        for sha, name in db.execute("SELECT sha256, name FROM model_tags JOIN tags ON id = tag_id"):
            tags.setdefault(sha, set()).add(name)
        gallery = set(db.execute("SELECT sha256, image_sha256 FROM images"))
    checks = 0
    for client in clients:
        for model, notes in client.notes.items():
            assert meta[model]["notes"] == notes, (client.number, model)
            checks += 1
        for model, name in client.tags.items():
            assert tags[model] == {name}, (client.number, model)
            checks += 1
        if client.shared_value is not None:
            assert meta[client.shared]["soak"][f"c{client.number}"] == client.shared_value
            checks += 1
        missing = [image for image in client.images if image not in gallery]
        assert missing == [], (client.number, missing)
        checks += len(client.images)
    assert checks > 0
    return checks
