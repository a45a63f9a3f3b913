// The virtualised grid's arithmetic: layout, visible window, paging, keyboard moves.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  contentHeight, itemPosition, layout, moveSelection, pagesFor, scrollToReveal, visibleRange,
} from "../../web/lib/virtual-window.mjs";

test("layout fits as many cards as the width allows and stretches them", () => {
  const geo = layout({ width: 1000, cardWidth: 180, gap: 8, infoHeight: 52 });
  assert.equal(geo.columns, 5);
  assert.equal(geo.itemWidth, (1000 - 4 * 8) / 5);
  assert.equal(geo.itemHeight, Math.round(geo.itemWidth * 1.5 + 52));
  assert.equal(geo.rowHeight, geo.itemHeight + 8);
  assert.equal(layout({ width: 100, cardWidth: 180 }).columns, 1, "never zero columns on a phone");
  assert.deepEqual(layout({ width: 600, cardWidth: 180, view: "list", listRowHeight: 56 }),
                   { columns: 1, itemWidth: 600, itemHeight: 56, rowHeight: 56 });
});

test("the visible window covers the viewport plus overscan rows and stays bounded", () => {
  const base = { viewportHeight: 800, rowHeight: 100, columns: 5, total: 10_000, overscan: 2 };
  assert.deepEqual(visibleRange({ ...base, scrollTop: 0 }), { first: 0, last: 50 });
  assert.deepEqual(visibleRange({ ...base, scrollTop: 1000 }), { first: 40, last: 100 });
  const end = visibleRange({ ...base, scrollTop: contentHeight(10_000, 5, 100) - 800 });
  assert.equal(end.last, 10_000);
  assert.ok(end.last - end.first <= 60, "a screenful plus overscan, never the whole list");
  assert.deepEqual(visibleRange({ ...base, total: 0, scrollTop: 0 }), { first: 0, last: 0 });
  assert.deepEqual(visibleRange({ ...base, total: 7, scrollTop: 0 }), { first: 0, last: 7 });
});

test("content height and item positions", () => {
  assert.equal(contentHeight(11, 5, 100), 300);
  assert.deepEqual(itemPosition(7, { columns: 5, itemWidth: 100, rowHeight: 160 }, 8), { x: 216, y: 160 });
});

test("pages holding a window", () => {
  assert.deepEqual(pagesFor(0, 50, 200), [0]);
  assert.deepEqual(pagesFor(190, 410, 200), [0, 1, 2]);
  assert.deepEqual(pagesFor(5, 5, 200), []);
});

test("arrow keys move by one or by a row, clamped; other keys are not ours", () => {
  assert.equal(moveSelection(-1, "ArrowRight", 5, 20), 0, "the first key selects the first card");
  assert.equal(moveSelection(3, "ArrowRight", 5, 20), 4);
  assert.equal(moveSelection(3, "ArrowDown", 5, 20), 8);
  assert.equal(moveSelection(17, "ArrowDown", 5, 20), 19, "clamped to the last card");
  assert.equal(moveSelection(2, "ArrowUp", 5, 20), 0);
  assert.equal(moveSelection(0, "ArrowLeft", 5, 20), 0);
  assert.equal(moveSelection(4, "End", 5, 20), 19);
  assert.equal(moveSelection(4, "a", 5, 20), null);
  assert.equal(moveSelection(0, "ArrowDown", 5, 0), null);
});

test("scrolling to reveal a selected card", () => {
  assert.equal(scrollToReveal(0, 5, 100, 0, 800), null);
  assert.equal(scrollToReveal(60, 5, 100, 0, 800, 8), 1200 + 92 - 800);
  assert.equal(scrollToReveal(5, 5, 100, 500, 800), 100);
});
