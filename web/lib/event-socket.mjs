// The events socket (/api/ws): subscribes to channels, reconnects, and re-dispatches what arrives.

/**
 * new EventSocket(url, ["scan", "import"]).start(); listen for "hk-event" ({detail: {channel,
 * type, data}}) and "hk-socket" ({detail: {open}}). Reconnects with a growing delay (up to
 * 10 s) until stop(). `WebSocketImpl` is for tests.
 */
export class EventSocket extends EventTarget {
  constructor(url, channels, { WebSocketImpl = globalThis.WebSocket, maxDelayMs = 10_000 } = {}) {
    super();
    this.url = url;
    this.channels = channels;
    this.WebSocketImpl = WebSocketImpl;
    this.maxDelayMs = maxDelayMs;
    this.delayMs = 500;
    this.socket = null;
    this.stopped = true;
    this.open = false;
  }

  start() {
    if (!this.stopped) return this;
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close();
    this.socket = null;
  }

  /** Resolves once the socket is open and subscribed (at once when it already is). */
  ready() {
    if (this.open) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (event) => {
        if (!event.detail.open) return;
        this.removeEventListener("hk-socket", done);
        resolve();
      };
      this.addEventListener("hk-socket", done);
    });
  }

  connect() {
    const socket = new this.WebSocketImpl(this.url);
    this.socket = socket;
    let subscribed = 0;
    socket.onopen = () => {
      for (const channel of this.channels) socket.send(JSON.stringify({ type: "subscribe", channel }));
    };
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not ours
      }
      if (event.type === "subscribed") {
        subscribed += 1;
        if (subscribed === this.channels.length) this.setOpen(true);
      } else if (event.channel) {
        this.dispatchEvent(new CustomEvent("hk-event", { detail: event }));
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.setOpen(false);
      if (this.stopped) return;
      this.timer = setTimeout(() => this.connect(), this.delayMs);
      this.delayMs = Math.min(this.maxDelayMs, this.delayMs * 2);
    };
    socket.onerror = () => {}; // a close follows; the reconnect is handled there
  }

  setOpen(open) {
    if (open) this.delayMs = 500;
    if (this.open === open) return;
    this.open = open;
    this.dispatchEvent(new CustomEvent("hk-socket", { detail: { open } }));
  }
}
