// The library view's state (tab, search, sort, tag filter, NSFW toggle) as /api/models parameters.

export const OTHERS = "others";
export const SORTS = ["name", "newest", "oldest", "size"];

/** A fresh view state; `include` and `exclude` are tag names. */
export function initialQuery() {
  return { type: "", search: "", sort: "name", include: [], exclude: [], showNsfw: false };
}

/** The list parameters for a view state (paging is added by the caller). */
export function listParams(state) {
  const exclude = [...state.exclude];
  if (!state.showNsfw && !exclude.some((name) => name.toLowerCase() === "nsfw")) exclude.push("nsfw");
  return {
    type: state.type || undefined,
    search: state.search.trim() || undefined,
    sort: state.sort,
    tags: state.include.length ? state.include : undefined,
    exclude_tags: exclude.length ? exclude : undefined,
    // models marked only by their level are left out on the server too
    max_nsfw_level: state.showNsfw ? undefined : 0,
  };
}

/** The next state of a tag in the filter: neutral → include → exclude → neutral. */
export function cycleTag(state, name) {
  const include = state.include.filter((n) => n !== name);
  const exclude = state.exclude.filter((n) => n !== name);
  if (state.include.includes(name)) exclude.push(name);
  else if (!state.exclude.includes(name)) include.push(name);
  return { ...state, include, exclude };
}

/** "include", "exclude" or "" for a tag name. */
export function tagState(state, name) {
  if (state.include.includes(name)) return "include";
  if (state.exclude.includes(name)) return "exclude";
  return "";
}

/** Calls `fn` once the calls have stopped for `ms` milliseconds. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
