"""The ComfyUI client against the fake server on loopback, and its readers of ComfyUI's shapes."""
from __future__ import annotations

import socket

import aiohttp
import pytest

from server.comfy import ComfyClient, ComfyError, Output, Unreachable, combo_options, outputs_of
from tests.fake_comfyui import OBJECT_INFO, SAMPLERS, SCHEDULERS, FakeComfyUI


@pytest.fixture
async def comfy(aiohttp_server):
    fake = FakeComfyUI()
    server = await aiohttp_server(fake.app)
    async with aiohttp.ClientSession() as session:
        yield fake, ComfyClient(session, str(server.make_url("/")))


async def test_submit_follow_and_fetch(comfy):
    fake, client = comfy
    messages = await client.open_messages("c1")
    graph = {"1": {"class_type": "SaveImage", "inputs": {}}}
    prompt_id = await client.submit(graph, "c1")
    assert fake.submitted == [{"prompt": graph, "client_id": "c1"}]
    seen = []
    while not seen or seen[-1] != "execution_success":
        message = await messages.next(10)
        seen.append(message["type"])
    await messages.close()
    assert seen[0] == "status" and "progress" in seen
    for _ in range(1000):  # ComfyUI writes the history just after execution_success
        entry = await client.history(prompt_id)
        if entry is not None:
            break
    [output] = outputs_of(entry)
    assert output == Output("1", "images", "hikaze_00001_.png", "txt2img", "output")
    assert await client.view(output) == fake.files[("hikaze_00001_.png", "txt2img", "output")]
    assert await client.queue_state(prompt_id) is None
    with pytest.raises(ComfyError, match="404"):
        await client.view(Output("1", "images", "nope.png", "", "output"))


async def test_a_refused_workflow_names_the_problem(comfy):
    _, client = comfy
    with pytest.raises(ComfyError, match="node Nope does not exist") as raised:
        await client.submit({"1": {"class_type": "Nope", "inputs": {}}}, "c")
    assert not isinstance(raised.value, Unreachable)


async def test_a_closed_port_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        client = ComfyClient(session, f"http://127.0.0.1:{port}")
        for call in (client.object_info(), client.history("x"), client.open_messages("c")):
            with pytest.raises(Unreachable, match=str(port)):
                await call


def test_combo_options_in_both_forms():
    assert combo_options(OBJECT_INFO, "KSampler", "sampler_name") == SAMPLERS
    assert combo_options(OBJECT_INFO, "KSampler", "scheduler") == SCHEDULERS
    assert combo_options(OBJECT_INFO, "CLIPTextEncode", "text") is None
    assert combo_options(OBJECT_INFO, "NoNode", "x") is None


def test_outputs_skip_what_is_not_a_file():
    entry = {"outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "s", "type": "temp"},
                                          {"no": "name"}], "text": ["hello"], "flag": True}}}
    assert outputs_of(entry) == [Output("9", "images", "a.png", "s", "temp")]
    assert outputs_of({}) == []
