// The one way we change ComfyUI's prototypes: a hook chained after the original method, which
// always runs first with the same arguments and whose result is returned unchanged.

/**
 * After `target[name](...)` also run `hook.call(this, result, ...args)`. A hook that throws is
 * logged, never allowed to break ComfyUI's own method.
 */
export function chainAfter(target, name, hook) {
  const original = target[name];
  target[name] = function chained(...args) {
    const result = original?.apply(this, args);
    try {
      hook.call(this, result, ...args);
    } catch (error) {
      console.error(`[Hikaze] ${name} hook failed`, error);
    }
    return result;
  };
}
