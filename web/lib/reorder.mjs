// Reordering a gallery: the new order of current positions after moving one picture.

/** The order (current positions in their new places) after moving `from` to `to` among `count`. */
export function movedOrder(count, from, to) {
  const order = [...Array(count).keys()];
  if (from === to || from < 0 || to < 0 || from >= count || to >= count) return order;
  const [moved] = order.splice(from, 1);
  order.splice(to, 0, moved);
  return order;
}
