// Human-readable sizes and dates for the cards and the details panel.

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** 1536 → "1.5 KB" (binary multiples, one decimal below 10). */
export function formatBytes(bytes) {
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** Epoch milliseconds → a local date, or "" when unknown. */
export function formatDate(ms) {
  return ms ? new Date(ms).toLocaleDateString() : "";
}
