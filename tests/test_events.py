"""The events socket: subscribe to a channel, receive what is published there, from any thread."""
import asyncio
import threading

from server.app_keys import EVENTS


async def test_subscriber_gets_events_of_its_channels_only(make_client):
    client = await make_client()
    hub = client.app[EVENTS]
    async with client.ws_connect("/api/ws") as socket:
        await socket.send_json({"type": "subscribe", "channel": "scan"})
        assert await socket.receive_json() == {"type": "subscribed", "channel": "scan"}
        hub.publish("library", "model_changed", {"sha256": "x"})
        thread = threading.Thread(target=hub.publish, args=("scan", "progress", {"done": 1}))
        thread.start()
        thread.join()
        event = await asyncio.wait_for(socket.receive_json(), 5)
        assert event == {"channel": "scan", "type": "progress", "data": {"done": 1}}


async def test_bad_messages_get_an_error_and_the_socket_stays_open(make_client):
    client = await make_client()
    async with client.ws_connect("/api/ws") as socket:
        for bad in ("not json", '{"type": "subscribe", "channel": "nope"}', "[1, 2]"):
            await socket.send_str(bad)
            answer = await socket.receive_json()
            assert answer["type"] == "error" and answer["code"] == "BAD_MESSAGE"
        await socket.send_json({"type": "subscribe", "channel": "import"})
        assert (await socket.receive_json())["type"] == "subscribed"


async def test_a_slow_subscriber_keeps_only_the_newest_events(make_client):
    client = await make_client()
    hub = client.app[EVENTS]
    subscriber = hub.subscribe()
    subscriber.channels.add("scan")
    for done in range(1000):
        hub.publish("scan", "progress", {"done": done})
    assert subscriber.queue.qsize() <= 256
    assert subscriber.queue.get_nowait()["data"]["done"] == 1000 - subscriber.queue.qsize() - 1
