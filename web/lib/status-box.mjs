// <hikaze-status>: the loading, empty and error states of a view, with an optional action.

/** show(kind, message, action?) with kind "loading" | "empty" | "error"; clear() hides it. */
export class StatusBox extends HTMLElement {
  connectedCallback() {
    this.setAttribute("role", "status");
    if (!this.dataset.kind) this.hidden = true;
  }

  show(kind, message, action) {
    this.dataset.kind = kind;
    this.hidden = false;
    const text = document.createElement("p");
    text.textContent = message;
    this.replaceChildren(text);
    if (action) {
      const button = Object.assign(document.createElement("button"), {
        type: "button", className: "hk-button hk-primary", textContent: action.label,
      });
      button.addEventListener("click", action.run);
      this.append(button);
    }
  }

  clear() {
    this.hidden = true;
    this.dataset.kind = "";
    this.replaceChildren();
  }
}

customElements.define("hikaze-status", StatusBox);
