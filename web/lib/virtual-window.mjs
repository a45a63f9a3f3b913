// The arithmetic of the virtualised grid: layout, the visible index window, paging, key moves.

/**
 * Columns and item sizes for a container width. Grid items stretch to fill the row; their
 * picture keeps a 2:3 aspect, with `infoHeight` pixels of text below. List rows are one column.
 */
export function layout({ width, cardWidth, gap = 8, infoHeight = 52, view = "grid", listRowHeight = 56 }) {
  if (view === "list") {
    return { columns: 1, itemWidth: Math.max(0, width), itemHeight: listRowHeight, rowHeight: listRowHeight };
  }
  const columns = Math.max(1, Math.floor((width + gap) / (cardWidth + gap)));
  const itemWidth = Math.max(0, (width - gap * (columns - 1)) / columns);
  const itemHeight = Math.round(itemWidth * 1.5 + infoHeight);
  return { columns, itemWidth, itemHeight, rowHeight: itemHeight + gap };
}

/** Height of the scrollable content for `total` items. */
export function contentHeight(total, columns, rowHeight) {
  return Math.ceil(total / columns) * rowHeight;
}

/** The items to render: [first, last) covering the viewport plus `overscan` rows each side. */
export function visibleRange({ scrollTop, viewportHeight, rowHeight, columns, total, overscan = 2 }) {
  if (total <= 0 || rowHeight <= 0) return { first: 0, last: 0 };
  const rows = Math.ceil(total / columns);
  const firstRow = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const lastRow = Math.min(rows, Math.ceil((scrollTop + viewportHeight) / rowHeight) + overscan);
  return { first: firstRow * columns, last: Math.min(total, Math.max(firstRow, lastRow) * columns) };
}

/** Page numbers (of `pageSize` items) that hold items [first, last). */
export function pagesFor(first, last, pageSize) {
  if (last <= first) return [];
  const pages = [];
  for (let page = Math.floor(first / pageSize); page <= Math.floor((last - 1) / pageSize); page += 1) {
    pages.push(page);
  }
  return pages;
}

/** Pixel position of item `index`. */
export function itemPosition(index, { columns, itemWidth, rowHeight }, gap = 8) {
  const column = index % columns;
  return { x: column * (itemWidth + gap), y: Math.floor(index / columns) * rowHeight };
}

/** The selection after an arrow/Home/End/Page key, or null for another key. */
export function moveSelection(index, key, columns, total, pageRows = 3) {
  if (total <= 0) return null;
  const current = index < 0 ? -1 : index;
  const moves = {
    ArrowRight: current + 1, ArrowLeft: current - 1,
    ArrowDown: current < 0 ? 0 : current + columns, ArrowUp: current - columns,
    Home: 0, End: total - 1,
    PageDown: current + columns * pageRows, PageUp: current - columns * pageRows,
  };
  if (!(key in moves)) return null;
  let next = moves[key];
  if (current < 0) next = 0;
  return Math.min(total - 1, Math.max(0, next));
}

/** The scrollTop that brings row of `index` fully into view, or null when it already is. */
export function scrollToReveal(index, columns, rowHeight, scrollTop, viewportHeight, gap = 8) {
  const top = Math.floor(index / columns) * rowHeight;
  const bottom = top + rowHeight - gap;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + viewportHeight) return Math.max(0, bottom - viewportHeight);
  return null;
}
