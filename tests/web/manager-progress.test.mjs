// Progress lines of the long jobs, and the review step's selection, batches and report.
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeProgress, formatEta, importProgress, jobProgress } from "../../web/manager/progress.mjs";
import { idsOfKind, importBatches, kindsOf, mergeReports, reportLines, reportSummary } from "../../web/manager/pending-review.mjs";
import { movedOrder } from "../../web/lib/reorder.mjs";

test("ETAs read as seconds, minutes or hours; unknown is empty", () => {
  assert.equal(formatEta(42.4), "42 s");
  assert.equal(formatEta(185), "3 min 5 s");
  assert.equal(formatEta(3720), "1 h 2 min");
  assert.equal(formatEta(null), "");
  assert.equal(formatEta(-1), "");
  assert.equal(formatEta("soon"), "");
});

test("progress counts files and bytes; bytes decide the fraction when known", () => {
  const p = describeProgress({ label: "Hashing", done: 2, total: 8, bytesDone: 512, bytesTotal: 2048, etaS: 10 });
  assert.equal(p.fraction, 0.25);
  assert.equal(p.text, "Hashing: 2 of 8 files · 512 B of 2.0 KB · about 10 s left");
  assert.equal(describeProgress({ done: 3, total: 4 }).fraction, 0.75);
  assert.equal(describeProgress({ label: "Walking", done: 12 }).fraction, null, "no total yet: indeterminate");
  assert.equal(describeProgress({ done: 4, total: 4, etaS: 3 }).text, "4 of 4 files", "no ETA once done");
});

test("a scan job's progress, its end and its failure", () => {
  const running = { kind: "hash", state: "running", files_done: 1, files_total: 2, bytes_done: 10, bytes_total: 20, eta_s: 5 };
  assert.deepEqual(jobProgress(running), { fraction: 0.5, text: "Hashing new files: 1 of 2 files · 10 B of 20 B · about 5 s left" });
  const done = { ...running, state: "done", files_done: 2, bytes_done: 20 };
  assert.equal(jobProgress(done).fraction, 1);
  const failed = { kind: "scan", state: "failed", files_done: 0, files_total: 0, bytes_done: 0, bytes_total: 0, error: "OSError: gone" };
  assert.match(jobProgress(failed).text, /^Scanning the model folders \(failed\) — OSError: gone$/);
});

test("import channel events become progress; other events do not", () => {
  assert.equal(importProgress({ type: "started", data: { total: 3 } }).text, "Importing 3 items…");
  const hashing = importProgress({ type: "progress", data: { phase: "hashing", done: 1, total: 2, bytes_done: 5, bytes_total: 10, eta_s: 1 } });
  assert.equal(hashing.fraction, 0.5);
  assert.match(hashing.text, /^Hashing: 1 of 2 items/);
  assert.equal(importProgress({ type: "legacy_progress", data: { done: 5, total: 10 } }).fraction, 0.5);
  assert.equal(importProgress({ type: "completed", data: {} }).fraction, 1);
  assert.equal(importProgress({ type: "model_changed", data: {} }), null);
});

const ITEMS = [
  { id: 1, name: "a", type: "loras" }, { id: 2, name: "b", type: "checkpoints" },
  { id: 3, name: "c", type: "loras" }, { id: 4, name: "d", type: "" },
];

test("kinds with counts, and the ids of one kind", () => {
  assert.deepEqual(kindsOf(ITEMS), [{ kind: "", count: 1 }, { kind: "checkpoints", count: 1 }, { kind: "loras", count: 2 }]);
  assert.deepEqual(idsOfKind(ITEMS, "loras"), [1, 3]);
  assert.deepEqual(idsOfKind(ITEMS, ""), [4]);
  assert.deepEqual(idsOfKind(ITEMS, "vae"), []);
});

test("one import request per strategy; items set apart keep theirs", () => {
  const perItem = new Map([[3, "override"], [4, "null"]]);
  assert.deepEqual(importBatches([1, 2, 3, 4], perItem, "merge"), [
    { strategy: "merge", ids: [1, 2] }, { strategy: "override", ids: [3] }, { strategy: null, ids: [4] },
  ]);
  assert.deepEqual(importBatches([], perItem, "merge"), []);
  assert.deepEqual(importBatches([1], new Map(), "null"), [{ strategy: null, ids: [1] }]);
});

test("reports merge, and failures and conflicts are listed with their reasons", () => {
  const merged = mergeReports([
    { total: 2, success: [1], conflict: [{ pending: { id: 3, path: "/m/c" }, existing: { sha256: "ab", path: "/m/x" } }], ignored: [], deleted: [], failed: [], image_errors: [] },
    { total: 1, success: [], conflict: [], ignored: [], deleted: [], failed: [{ id: 2, error: "The file is gone", code: "FILE_MISSING" }], image_errors: [{ id: 1, error: "bad png" }] },
  ]);
  assert.equal(merged.total, 3);
  assert.equal(reportSummary(merged), "1 imported, 1 conflict, 1 failed");
  const lines = reportLines(merged, new Map(ITEMS.map((item) => [item.id, item])));
  assert.deepEqual(lines.map((l) => [l.kind, l.name]), [["failed", "b"], ["conflict", "c"], ["image", "a"]]);
  assert.equal(lines[0].reason, "The file is gone (FILE_MISSING)");
  assert.match(lines[1].reason, /\/m\/x/);
  assert.equal(reportSummary(mergeReports([])), "Nothing was imported");
});

test("moving a picture gives the order of current positions", () => {
  assert.deepEqual(movedOrder(4, 3, 0), [3, 0, 1, 2]);
  assert.deepEqual(movedOrder(4, 0, 2), [1, 2, 0, 3]);
  assert.deepEqual(movedOrder(3, 1, 1), [0, 1, 2]);
  assert.deepEqual(movedOrder(3, 5, 0), [0, 1, 2], "out of range: unchanged");
});
