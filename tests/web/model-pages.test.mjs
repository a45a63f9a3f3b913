// Paging through a long list: pages on demand, bounded cache, stale answers dropped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelPages } from "../../web/lib/model-pages.mjs";

function source(total) {
  const asked = [];
  const fetchPage = async (offset, limit) => {
    asked.push(offset);
    const models = [];
    for (let i = offset; i < Math.min(total, offset + limit); i += 1) models.push({ sha256: `m${i}` });
    return { models, total };
  };
  return { asked, fetchPage };
}

test("pages load on demand and the total is learnt from the first", async () => {
  const { asked, fetchPage } = source(1000);
  const pages = new ModelPages(fetchPage, { pageSize: 100 });
  assert.equal(pages.total, null);
  await pages.ensure(0, 50);
  assert.equal(pages.total, 1000);
  assert.equal(pages.get(49).sha256, "m49");
  assert.equal(pages.get(150), undefined);
  await pages.ensure(150, 320);
  assert.deepEqual(asked, [0, 100, 200, 300]);
  await pages.ensure(150, 320);
  assert.equal(asked.length, 4, "pages held are not fetched again");
});

test("the cache keeps at most maxPages pages", async () => {
  const { fetchPage } = source(10_000);
  const pages = new ModelPages(fetchPage, { pageSize: 100, maxPages: 3 });
  for (let page = 0; page < 10; page += 1) await pages.ensure(page * 100, page * 100 + 1);
  assert.equal(pages.pages.size, 3);
  assert.equal(pages.get(950).sha256, "m950");
  assert.equal(pages.get(0), undefined);
});

test("an answer for an older query is dropped after reset()", async () => {
  let release;
  const slow = new Promise((resolve) => { release = resolve; });
  let calls = 0;
  const pages = new ModelPages(async () => {
    calls += 1;
    if (calls === 1) { await slow; return { models: [{ sha256: "old" }], total: 1 }; }
    return { models: [{ sha256: "new" }], total: 1 };
  });
  const first = pages.ensure(0, 1);
  pages.reset();
  await pages.ensure(0, 1);
  release();
  await first;
  assert.equal(pages.get(0).sha256, "new");
});

test("errors are kept for the view and a later ensure() retries", async () => {
  let fail = true;
  const pages = new ModelPages(async () => {
    if (fail) throw new Error("down");
    return { models: [{ sha256: "x" }], total: 1 };
  });
  await pages.ensure(0, 1);
  assert.equal(pages.error.message, "down");
  fail = false;
  await pages.ensure(0, 1);
  assert.equal(pages.error, null);
  assert.equal(pages.get(0).sha256, "x");
});

test("update() replaces a cached summary", async () => {
  const { fetchPage } = source(10);
  const pages = new ModelPages(fetchPage);
  await pages.ensure(0, 10);
  assert.equal(pages.update("m3", { name: "renamed" }), true);
  assert.equal(pages.get(3).name, "renamed");
  assert.equal(pages.update("nope", {}), false);
});
