// The NSFW rule: which models and pictures count as NSFW, and how a card shows them.

/** A model (or image) is NSFW when it has the tag `nsfw` or an nsfw_level above 0. */
export function isNsfw(item) {
  if (!item) return false;
  if (Number(item.nsfw_level) > 0) return true;
  return (item.tags ?? []).some((tag) => String(tag?.name ?? tag).trim().toLowerCase() === "nsfw");
}

/**
 * How to show an item: "show", "blur" (NSFW with the toggle on) or "hide" (NSFW with the
 * toggle off: the picture is never loaded). The server already leaves out models tagged
 * `nsfw` while hidden; this also covers those only marked by their level.
 */
export function nsfwDisplay(item, showNsfw) {
  if (!isNsfw(item)) return "show";
  return showNsfw ? "blur" : "hide";
}
