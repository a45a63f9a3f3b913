"""API benchmark: the real sidecar over a 10 000-model library, timed from a loopback client.

Run from the repository root: `python -m bench.api`. It builds the library in a temp folder,
starts `python -m server` on a free loopback port and prints one table: start-to-healthy time,
p50/p99 of list, filtered-list and detail calls, list p99 while four large PNG uploads are
processed, and the sidecar's RSS, each against its target. It always exits 0: benchmarks
report, they do not fail CI.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from PIL import Image, ImageChops

from bench.sidecar import free_port, start_sidecar, stop_sidecar
from server import store

log = logging.getLogger("bench.api")

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS = 10_000
TAG_LINKS = 30_000
REQUESTS = 300  # timed requests per figure, sent one after another
WARMUP = 20
UPLOADS = 4
UPLOAD_SIZE = (3000, 2000)
HEALTH_TIMEOUT_S = 30.0
UPLOAD_WINDOW_S = 300.0  # bounds the list loop that runs beside the uploads
UPLOAD_WINDOW_MAX_REQUESTS = 5000
SEED = 20240501

# kind → (share of the library, file extension, size range in bytes)
KINDS = {
    "loras": (0.60, ".safetensors", (10 << 20, 400 << 20)),
    "checkpoints": (0.15, ".safetensors", (2 << 30, 7 << 30)),
    "embeddings": (0.12, ".pt", (10 << 10, 200 << 10)),
    "vae": (0.05, ".safetensors", (80 << 20, 330 << 20)),
    "controlnet": (0.05, ".safetensors", (700 << 20, 2500 << 20)),
    "upscale_models": (0.03, ".pth", (16 << 20, 70 << 20)),
}
FOLDERS = ["", "sdxl", "sd15", "pony", "flux", "characters/anime", "styles", "old/unsorted"]
BASES = ["SDXL 1.0", "SD 1.5", "Pony", "Illustrious", "Flux.1 D", ""]
WORDS = ["anime", "realistic", "ink", "watercolor", "pixel", "cyberpunk", "portrait",
         "landscape", "detail", "lighting", "fantasy", "armor", "dress", "dragon", "city",
         "forest", "retro", "neon", "sketch", "chibi", "mecha", "gothic", "pastel", "noir"]
TAG_TAILS = ["style", "character", "concept", "clothing", "pose", "background", "effect",
             "xl", "pony", "sd15"]
TAG_NAMES = [f"{head} {tail}" for head in WORDS[:20] for tail in TAG_TAILS]  # 200 tags
TARGETS = {"list_p99_ms": 50.0, "upload_ratio": 2.0, "rss_mb": 150.0, "start_s": 1.0}


@dataclass(frozen=True)
class Library:
    """What the timed requests need to know about the generated library."""

    shas: list[str]
    loras: list[str]
    popular_tags: list[str]  # most linked first


# ---------------------------------------------------------------- the library

def build_library(db_path: Path, models_dir: Path, rng: random.Random) -> Library:
    """Write the models, files, tags and links in one transaction through the server's own
    connect() (so the schema and pragmas are the sidecar's)."""
    for kind in KINDS:
        (models_dir / kind).mkdir(parents=True, exist_ok=True)
    models, files = _model_rows(models_dir, rng)
    links = _tag_links(len(models), rng)
    db = store.connect(db_path)
    try:
        with db.atomic():
            db.conn.executemany(
                "INSERT INTO models(sha256, name, type, base_model, size_bytes, created_at, "
                "updated_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", models)
            db.conn.executemany(
                "INSERT INTO files(path, sha256, size_bytes, mtime_ns, kind, state, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", files)
            db.conn.executemany("INSERT INTO tags(id, name) VALUES (?, ?)",
                                list(enumerate(TAG_NAMES, start=1)))
            db.conn.executemany("INSERT INTO model_tags(sha256, tag_id) VALUES (?, ?)",
                                [(models[m][0], t) for m, t in links])
    finally:
        db.conn.close()
    uses = {t: 0 for t in range(1, len(TAG_NAMES) + 1)}
    for _, tag_id in links:
        uses[tag_id] += 1
    popular = sorted(uses, key=uses.__getitem__, reverse=True)
    return Library(shas=[m[0] for m in models], loras=[m[0] for m in models if m[2] == "loras"],
                   popular_tags=[TAG_NAMES[t - 1] for t in popular])


def _model_rows(models_dir: Path, rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    now = int(time.time() * 1000)
    kinds = rng.choices(list(KINDS), weights=[share for share, _, _ in KINDS.values()], k=MODELS)
    models, files = [], []
    for index, kind in enumerate(kinds):
        _, ext, (low, high) = KINDS[kind]
        sha = hashlib.sha256(f"bench-model-{index}".encode()).hexdigest()
        words = rng.sample(WORDS, 2)
        name = f"{words[0].title()} {words[1].title()} v{rng.randint(1, 9)}"
        stem = f"{words[0]}_{words[1]}_{index}"
        size = rng.randint(low, high)
        created = now - rng.randint(0, 2 * 365 * 86_400_000)
        models.append((sha, "" if rng.random() < 0.1 else name, kind, rng.choice(BASES), size,
                       created, created + rng.randint(0, 86_400_000), _meta(words, rng)))
        copies = 2 if rng.random() < 0.05 else 1  # a few models sit in two folders
        for folder in rng.sample(FOLDERS, copies):
            path = models_dir / kind / folder / f"{stem}{ext}"
            state = "missing" if rng.random() < 0.02 else "present"
            files.append((str(path), sha, size, created * 1_000_000, kind, state, now))
    return models, files


def _meta(words: list[str], rng: random.Random) -> str:
    meta: dict = {
        "description": " ".join(rng.choices(WORDS + ["the", "a", "of", "with"],
                                            k=rng.randint(10, 250))),
        "trigger_words": [f"{w}{rng.randint(1, 99)}" for w in words],
        "source": {"provider": "civitai", "model_id": rng.randint(1, 900_000),
                   "version_id": rng.randint(1, 2_000_000)},
    }
    if rng.random() < 0.2:
        meta["nsfw_level"] = rng.choice([1, 2, 4, 8, 16])
    return json.dumps(meta)


def _tag_links(model_count: int, rng: random.Random) -> list[tuple[int, int]]:
    """TAG_LINKS distinct (model index, tag id) pairs; tag use falls off like real tags do."""
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(TAG_NAMES))]
    ids = list(range(1, len(TAG_NAMES) + 1))
    rng.shuffle(ids)
    links: set[tuple[int, int]] = set()
    for _ in range(TAG_LINKS * 10):  # bounded; collisions are rare at 30k of 2M pairs
        if len(links) == TAG_LINKS:
            break
        links.add((rng.randrange(model_count), rng.choices(ids, weights)[0]))
    return sorted(links)


def make_pngs(rng: random.Random) -> list[bytes]:
    """UPLOADS distinct noisy 3000×2000 PNGs (~12 MB each, like a real render)."""
    width, height = UPLOAD_SIZE
    gradient = Image.linear_gradient("L").resize(UPLOAD_SIZE)
    across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(UPLOAD_SIZE)
    channels = [Image.blend(base, Image.effect_noise(UPLOAD_SIZE, 16), 0.35)
                for base in (gradient, across, gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM))]
    picture = Image.merge("RGB", channels)
    pngs = []
    for _ in range(UPLOADS):  # shifting the noise gives each upload its own content hash
        shifted = ImageChops.offset(picture, rng.randrange(width), rng.randrange(height))
        buffer = io.BytesIO()
        shifted.save(buffer, "PNG", compress_level=1)
        pngs.append(buffer.getvalue())
    return pngs


# ---------------------------------------------------------------- the sidecar

async def wait_healthy(session: aiohttp.ClientSession, base: str,
                       process: subprocess.Popen) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            async with session.get(f"{base}/api/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.005)
    if process.poll() is not None:
        raise BenchError(f"the sidecar exited with code {process.returncode} before it was healthy")
    raise BenchError(f"the sidecar did not answer /api/health within {HEALTH_TIMEOUT_S:.0f} s")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


class BenchError(Exception):
    """The benchmark could not take a measurement."""


# ---------------------------------------------------------------- timing

async def time_get(session: aiohttp.ClientSession, url: str) -> float:
    """Milliseconds for one GET, body read; a non-200 answer stops the benchmark."""
    start = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status != 200:
        raise BenchError(f"GET {url} answered {response.status}: {body[:300]!r}")
    return elapsed


async def time_all(session: aiohttp.ClientSession, urls: list[str]) -> list[float]:
    return [await time_get(session, url) for url in urls]


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def upload(base: str, sha: str, png: bytes) -> float:
    """POST one picture and return the seconds it took. Runs in its own process, so sending
    12 MB bodies never delays the client that times the list calls."""
    boundary = "hikaze-bench-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"sha256\"\r\n\r\n{sha}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"b.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}/api/images/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise BenchError(f"upload answered {exc.code}: {exc.read()[:300]!r}") from None
    return time.perf_counter() - start


async def list_under_uploads(session: aiohttp.ClientSession, base: str, list_url: str,
                             shas: list[str], pngs: list[bytes]) -> tuple[list[float], float]:
    """List latencies sampled back to back while the uploads are in flight; and the seconds
    the slowest upload took."""
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=len(pngs)) as uploaders:
        tasks = [loop.run_in_executor(uploaders, upload, base, sha, png)
                 for sha, png in zip(shas, pngs)]
        samples: list[float] = []
        deadline = time.monotonic() + UPLOAD_WINDOW_S
        while (not all(task.done() for task in tasks) and time.monotonic() < deadline
               and len(samples) < UPLOAD_WINDOW_MAX_REQUESTS):
            samples.append(await time_get(session, list_url))
        seconds = await asyncio.gather(*tasks)
    return samples, max(seconds)


# ---------------------------------------------------------------- the run

async def measure(base: str, process: subprocess.Popen, library: Library,
                  pngs: list[bytes], started: float, results: dict, key_file: Path) -> None:
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await wait_healthy(session, base, process)
        results["start_s"] = time.perf_counter() - started
        results["rss_start_mb"] = rss_mb(process.pid)[0]
        rng = random.Random(SEED + 1)
        list_url = f"{base}/api/models?type=loras&limit=200"
        await time_all(session, [list_url] * WARMUP)
        results["list"] = await time_all(session, [list_url] * REQUESTS)
        results["filtered"] = await time_all(session, [
            f"{base}/api/models?" + urlencode({
                "limit": 200, "search": rng.choice(WORDS),
                "tags": rng.choice(library.popular_tags[:10]),
                "exclude_tags": rng.choice(library.popular_tags[10:40])})
            for _ in range(REQUESTS)])
        results["details"] = await time_all(
            session, [f"{base}/api/models/{sha}" for sha in rng.sample(library.shas, REQUESTS)])
        results["v1"] = await time_v1(base, key_file, library, rng)
        results["rss_reads_mb"] = rss_mb(process.pid)[0]
        log.info("Uploading %d %d×%d PNGs while listing", UPLOADS, *UPLOAD_SIZE)
        results["uploading"], results["upload_s"] = await list_under_uploads(
            session, base, list_url, rng.sample(library.loras, UPLOADS), pngs)
    results["rss_mb"], results["rss_peak_mb"] = rss_mb(process.pid)


async def time_v1(base: str, key_file: Path, library: Library, rng: random.Random) -> list[float]:
    """The public list as a script calls it (with the API key the sidecar made), mixed filters."""
    key = json.loads(key_file.read_text())["key"]
    queries = [{"limit": 100}, {"hasMetadata": "true"}, {"hasMetadata": "false", "sort": "name"},
               {"type": "loras", "baseModel": "Pony"}, {"sort": "size", "page": 100},
               {"tags": library.popular_tags[0], "maxNsfwLevel": 0, "sort": "oldest"}]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                     headers={"Authorization": f"Bearer {key}"}) as session:
        return await time_all(session, [f"{base}/api/v1/models?" + urlencode(rng.choice(queries))
                                        for _ in range(REQUESTS)])


def run(work: Path) -> dict:
    results: dict = {}
    rng = random.Random(SEED)
    data_dir, models_dir = work / "data", work / "models"
    start = time.perf_counter()
    library = build_library(data_dir / "library.db", models_dir, rng)
    log.info("Built %d models, %d tag links in %.1f s", len(library.shas), TAG_LINKS,
             time.perf_counter() - start)
    pngs = make_pngs(rng)
    log.info("Made %d PNGs of %.1f MB on average", len(pngs),
             sum(map(len, pngs)) / len(pngs) / 1e6)
    port = free_port()
    with open(work / "sidecar.log", "wb") as sidecar_log:
        started = time.perf_counter()
        process = start_sidecar(data_dir, port, sidecar_log, "--models-dir", str(models_dir))
        try:
            asyncio.run(measure(f"http://127.0.0.1:{port}", process, library, pngs, started,
                                results, data_dir / "api-key.json"))
        except (BenchError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.error("The benchmark stopped early: %s", exc)
            sidecar_log.flush()
            tail = (work / "sidecar.log").read_text(errors="replace")[-2000:]
            log.error("Sidecar log (last lines):\n%s", tail)
        finally:
            stop_sidecar(process)
    return results


def report(results: dict) -> str:
    """One table: figure, value, target and a verdict where the issue sets a target."""
    start, rss = results.get("start_s"), results.get("rss_mb")
    rows = [("start to healthy", f"{start * 1000:.0f} ms" if start else "n/a", "< 1000 ms",
             _verdict(start is not None and start < TARGETS["start_s"]))]
    rows += _latency_rows(results)
    rows.append(("sidecar RSS after the run", f"{rss:.0f} MB" if rss else "n/a", "< 150 MB",
                 _verdict(rss is not None and rss < TARGETS["rss_mb"])))
    if rss:
        rows += [("  when healthy / after the reads",
                  f"{results['rss_start_mb']:.0f} / {results['rss_reads_mb']:.0f} MB", "", ""),
                 ("  peak (VmHWM)", f"{results['rss_peak_mb']:.0f} MB", "", "")]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [("figure", "value", "target", ""), tuple("-" * w for w in widths), *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)


def _latency_rows(results: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for key, label, target in (("list", "list loras limit=200", "< 50 ms"),
                               ("filtered", "filtered list, all kinds", ""),
                               ("details", "details /api/models/{sha}", ""),
                               ("v1", "/api/v1/models, mixed filters", "")):
        samples = results.get(key)
        if not samples:
            rows.append((f"{label} p99", "n/a", target, "MISS"))
            continue
        p99 = percentile(samples, 99)
        rows.append((f"{label} p50", f"{percentile(samples, 50):.1f} ms", "", ""))
        rows.append((f"{label} p99", f"{p99:.1f} ms", target,
                     _verdict(p99 < TARGETS["list_p99_ms"]) if target else "-"))
    under, idle = results.get("uploading"), results.get("list")
    if not (under and idle):
        return [*rows, ("list p99 under uploads / idle", "n/a", "≤ 2×", "MISS")]
    label = f"list under {UPLOADS} uploads ({len(under)} requests)"
    ratio = percentile(under, 99) / percentile(idle, 99)
    return [*rows, (f"{label} p50", f"{percentile(under, 50):.1f} ms", "", ""),
            (f"{label} p99", f"{percentile(under, 99):.1f} ms", "", ""),
            ("  ratio to idle list p99", f"{ratio:.2f}×", "≤ 2×",
             _verdict(ratio <= TARGETS["upload_ratio"])),
            ("  slowest upload", f"{results['upload_s']:.1f} s", "", "")]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="hikaze-bench-") as work:
        results = run(Path(work))
    print(f"\nHikaze API benchmark: {MODELS} models, {TAG_LINKS} tag links, "
          f"{len(TAG_NAMES)} tags; {REQUESTS} sequential requests per figure\n")
    print(report(results))
    print("\nLoad average when done: {:.2f} {:.2f} {:.2f} on {} CPUs (other work on the machine "
          "skews the tail latencies)".format(*os.getloadavg(), os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
