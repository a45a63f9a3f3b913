// The events socket: subscribes to every channel, re-dispatches events, reconnects after a close.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EventSocket } from "../../web/lib/event-socket.mjs";

class FakeServerSocket {
  static made = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeServerSocket.made.push(this);
    queueMicrotask(() => this.onopen?.());
  }
  send(text) {
    this.sent.push(JSON.parse(text));
    const { type, channel } = JSON.parse(text);
    queueMicrotask(() => this.onmessage?.({ data: JSON.stringify({ type: `${type}d`, channel }) }));
  }
  push(event) { this.onmessage?.({ data: typeof event === "string" ? event : JSON.stringify(event) }); }
  close() { this.onclose?.(); }
}

test("subscribes, is ready once every channel is, and passes events on", async () => {
  FakeServerSocket.made = [];
  const events = new EventSocket("ws://x/api/ws", ["scan", "import"], { WebSocketImpl: FakeServerSocket }).start();
  await events.ready();
  const [socket] = FakeServerSocket.made;
  assert.deepEqual(socket.sent, [{ type: "subscribe", channel: "scan" }, { type: "subscribe", channel: "import" }]);
  const seen = [];
  events.addEventListener("hk-event", (e) => seen.push(e.detail));
  socket.push({ channel: "scan", type: "progress", data: { files_done: 1 } });
  socket.push("not json");
  assert.deepEqual(seen, [{ channel: "scan", type: "progress", data: { files_done: 1 } }]);
  events.stop();
});

test("a closed socket is reopened and subscribed again; stop() ends it", async () => {
  FakeServerSocket.made = [];
  const events = new EventSocket("ws://x/api/ws", ["scan"], { WebSocketImpl: FakeServerSocket }).start();
  events.delayMs = 1;
  await events.ready();
  const states = [];
  events.addEventListener("hk-socket", (e) => states.push(e.detail.open));
  FakeServerSocket.made[0].close();
  await events.ready();
  assert.deepEqual(states, [false, true]);
  assert.equal(FakeServerSocket.made.length, 2);
  events.stop();
  assert.equal(events.open, false);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(FakeServerSocket.made.length, 2, "no reconnect after stop");
});
