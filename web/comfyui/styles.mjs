// Our look inside ComfyUI: the shared stylesheet confined to our own elements, plus comfy.css.

/**
 * hikaze.css styles whole pages (`:root` variables, bare `input` rules) for the manager; in
 * ComfyUI's page it must not touch ComfyUI's own controls, so it is applied inside
 * `@scope (.hk-comfy)`, with its `:root` variables moved onto each of our root elements.
 */
export function scopedLibraryCss(css) {
  return `@scope (.hk-comfy) {\n${css.replaceAll(":root", ":scope")}\n}\n`;
}

export async function installStyles() {
  const load = (path) => fetch(new URL(path, import.meta.url)).then((answer) => (answer.ok ? answer.text() : ""));
  const [library, own] = await Promise.all([load("../lib/hikaze.css"), load("./comfy.css")]);
  const style = document.createElement("style");
  style.dataset.hikaze = "styles";
  style.textContent = scopedLibraryCss(library) + own;
  document.head.append(style);
}
