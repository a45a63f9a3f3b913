// A window onto a long server-side list: fetches pages as they come into view, keeps a few.

import { pagesFor } from "./virtual-window.mjs";

/**
 * new ModelPages(fetchPage, {pageSize, maxPages}); `fetchPage(offset, limit)` answers
 * {models, total}. After reset(), answers for an older query are dropped, so a slow response
 * can never paint stale results over fresh ones.
 */
export class ModelPages extends EventTarget {
  constructor(fetchPage, { pageSize = 200, maxPages = 24 } = {}) {
    super();
    this.fetchPage = fetchPage;
    this.pageSize = pageSize;
    this.maxPages = maxPages;
    this.reset();
  }

  /** Forget everything (a new query); `total` is unknown (null) until the first page arrives. */
  reset() {
    this.generation = (this.generation ?? 0) + 1;
    this.total = null;
    this.pages = new Map(); // page number → models (Map keeps insertion order: oldest first)
    this.loading = new Map(); // page number → promise
    this.error = null;
  }

  /** The model at `index`, or undefined while its page is not here. */
  get(index) {
    const page = this.pages.get(Math.floor(index / this.pageSize));
    return page?.[index % this.pageSize];
  }

  /** Loads the pages holding [first, last); resolves when they are here (or failed). */
  ensure(first, last) {
    const wanted = this.total === null ? [Math.floor(first / this.pageSize)]
      : pagesFor(first, Math.min(last, this.total), this.pageSize);
    return Promise.all(wanted.map((page) => this.load(page)));
  }

  load(page) {
    if (this.pages.has(page)) {
      const models = this.pages.get(page);
      this.pages.delete(page); // refresh its place as most recently used
      this.pages.set(page, models);
      return Promise.resolve();
    }
    if (this.loading.has(page)) return this.loading.get(page);
    const generation = this.generation;
    const promise = this.fetchPage(page * this.pageSize, this.pageSize).then(
      ({ models, total }) => {
        if (generation !== this.generation) return;
        this.loading.delete(page);
        this.error = null;
        this.total = total;
        this.pages.set(page, models);
        while (this.pages.size > this.maxPages) this.pages.delete(this.pages.keys().next().value);
        this.dispatchEvent(new Event("change"));
      },
      (error) => {
        if (generation !== this.generation) return;
        this.loading.delete(page);
        this.error = error;
        this.dispatchEvent(new Event("change"));
      },
    );
    this.loading.set(page, promise);
    return promise;
  }

  /** Replace the cached summary of a model (after an edit) wherever it is; true if found. */
  update(sha256, fields) {
    for (const models of this.pages.values()) {
      const index = models.findIndex((model) => model.sha256 === sha256);
      if (index >= 0) {
        models[index] = { ...models[index], ...fields };
        this.dispatchEvent(new Event("change"));
        return true;
      }
    }
    return false;
  }
}
