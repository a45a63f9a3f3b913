// The review step's logic: selection by kind, conflict strategies per item, import batches, reports.

export const STRATEGIES = ["null", "merge", "override", "ignore", "delete"];
export const STRATEGY_LABELS = {
  "null": "Ask (leave conflicts pending)", merge: "Merge (fill blanks)", override: "Override the library's fields",
  ignore: "Ignore (stay pending)", delete: "Delete the pending item",
};

/** [{kind, count}] of the pending items, by kind name. */
export function kindsOf(items) {
  const counts = new Map();
  for (const item of items) counts.set(item.type || "", (counts.get(item.type || "") ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([kind, count]) => ({ kind, count }));
}

/** The ids of the items of one kind ("" = no kind), to select. */
export function idsOfKind(items, kind) {
  return items.filter((item) => (item.type || "") === kind).map((item) => item.id);
}

/**
 * Import requests for the selected ids: one per conflict strategy (the server takes one per
 * request). `perItem` maps id → strategy for items set apart from `forAll`. Ids keep their order.
 */
export function importBatches(selectedIds, perItem, forAll) {
  const batches = new Map();
  for (const id of selectedIds) {
    const strategy = perItem.get(id) ?? forAll;
    if (!batches.has(strategy)) batches.set(strategy, []);
    batches.get(strategy).push(id);
  }
  return [...batches].map(([strategy, ids]) => ({ strategy: strategy === "null" ? null : strategy, ids }));
}

/** Several 207 reports as one (the buckets concatenated, totals added). */
export function mergeReports(reports) {
  const merged = { total: 0, success: [], conflict: [], ignored: [], deleted: [], failed: [], image_errors: [] };
  for (const report of reports) {
    merged.total += report.total ?? 0;
    for (const key of Object.keys(merged)) {
      if (Array.isArray(merged[key]) && Array.isArray(report[key])) merged[key].push(...report[key]);
    }
  }
  return merged;
}

/** The report's lines for the user: failures and conflicts with their reasons, named. */
export function reportLines(report, itemsById) {
  const name = (id) => itemsById.get(id)?.name ?? itemsById.get(Number(id))?.name ?? `item ${id}`;
  const lines = [];
  for (const failure of report.failed ?? []) {
    lines.push({ kind: "failed", id: failure.id, name: name(failure.id), reason: `${failure.error} (${failure.code})` });
  }
  for (const conflict of report.conflict ?? []) {
    const id = conflict.pending?.id;
    lines.push({ kind: "conflict", id, name: name(id),
                 reason: `the library already has this file's content (${conflict.existing?.path || conflict.existing?.sha256}); choose a strategy to import it` });
  }
  for (const problem of report.image_errors ?? []) {
    lines.push({ kind: "image", id: problem.id, name: name(problem.id), reason: `preview not converted: ${problem.error}` });
  }
  return lines;
}

/** One sentence of counts: "3 imported, 1 conflict, 1 failed". */
export function reportSummary(report) {
  const parts = [[report.success, "imported"], [report.conflict, "conflict", "conflicts"], [report.ignored, "ignored"],
                 [report.deleted, "deleted"], [report.failed, "failed"]]
    .filter(([list]) => list?.length)
    .map(([list, one, many]) => `${list.length} ${list.length === 1 ? one : many ?? one}`);
  return parts.length ? parts.join(", ") : "Nothing was imported";
}
