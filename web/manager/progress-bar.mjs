// <hikaze-progress>: one job's bar and line of text; indeterminate while there is no total.

export class ProgressBar extends HTMLElement {
  connectedCallback() {
    if (this.bar) return;
    this.innerHTML = `<progress max="1"></progress><span class="mm-progress-text" role="status" aria-live="polite"></span>`;
    this.bar = this.querySelector("progress");
    this.label = this.querySelector("span");
  }

  /** {fraction (0..1, or null: indeterminate), text}; null hides the bar. */
  set progress(progress) {
    this.connectedCallback();
    this.hidden = !progress;
    if (!progress) return;
    if (progress.fraction === null || progress.fraction === undefined) this.bar.removeAttribute("value");
    else this.bar.value = progress.fraction;
    this.label.textContent = progress.text;
    this.dataset.done = String(progress.fraction === 1);
  }
}

customElements.define("hikaze-progress", ProgressBar);
