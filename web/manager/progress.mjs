// Progress of long jobs (scan, hash, import, legacy migration) as a fraction and one line of text.

import { formatBytes } from "../lib/format.mjs";

/** "42 s", "3 min 5 s", "1 h 2 min"; "" when unknown. */
export function formatEta(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds)) || seconds < 0) return "";
  const s = Math.round(Number(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * {fraction (0..1, or null when there is no total yet), text} from counts:
 * files (done/total), optional bytes and an ETA in seconds.
 */
export function describeProgress({ label = "", done = 0, total = 0, bytesDone = 0, bytesTotal = 0, etaS = null, unit = "files" }) {
  const parts = [];
  if (total > 0) parts.push(`${done.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} ${unit}`);
  else if (done > 0) parts.push(`${done.toLocaleString("en-US")} ${unit}`);
  if (bytesTotal > 0) parts.push(`${formatBytes(bytesDone)} of ${formatBytes(bytesTotal)}`);
  const eta = formatEta(etaS);
  if (eta && (total === 0 || done < total)) parts.push(`about ${eta} left`);
  const fraction = bytesTotal > 0 ? Math.min(1, bytesDone / bytesTotal)
    : total > 0 ? Math.min(1, done / total) : null;
  return { fraction, text: [label, parts.join(" · ")].filter(Boolean).join(": ") };
}

const JOB_LABELS = { scan: "Scanning the model folders", hash: "Hashing new files" };
const JOB_STATES = { queued: "waiting", done: "done", failed: "failed", cancelled: "cancelled" };

/** A scan or hash Job (GET /api/jobs/{id}, or the `scan` channel's data) as progress. */
export function jobProgress(job) {
  const label = JOB_LABELS[job.kind] ?? job.kind;
  const state = JOB_STATES[job.state];
  const progress = describeProgress({
    label: state && job.state !== "done" ? `${label} (${state})` : label,
    done: job.files_done, total: job.files_total, bytesDone: job.bytes_done,
    bytesTotal: job.bytes_total, etaS: job.state === "running" ? job.eta_s : null,
  });
  if (job.state === "done") progress.fraction = 1;
  if (job.state === "failed" && job.error) progress.text += ` — ${job.error}`;
  return progress;
}

const IMPORT_PHASES = { hashing: "Hashing", images: "Converting previews", importing: "Importing" };

/** An `import` channel event ({type, data}) as progress, or null when it is not about progress. */
export function importProgress({ type, data }) {
  if (type === "started") return { fraction: 0, text: `Importing ${data.total} item${data.total === 1 ? "" : "s"}…` };
  if (type === "progress") {
    return describeProgress({
      label: IMPORT_PHASES[data.phase] ?? data.phase, done: data.done, total: data.total,
      bytesDone: data.bytes_done ?? 0, bytesTotal: data.bytes_total ?? 0, etaS: data.eta_s, unit: "items",
    });
  }
  if (type === "legacy_progress") {
    return describeProgress({ label: "Reading the v1 database", done: data.done, total: data.total, unit: "models" });
  }
  if (type === "completed" || type === "legacy_completed") return { fraction: 1, text: "Finished" };
  return null;
}
