"""A local stand-in for Civitai's `GET /api/v1/model-versions/by-hash/{hash}`, answering in its
documented format on 127.0.0.1, and a builder of model-version documents."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from aiohttp import web


def version_document(sha256: str, *, model_id: int = 1234, version_id: int = 5678,
                     name: str = "Ink Style", base_model: str = "SDXL 1.0",
                     trained_words: tuple[str, ...] = ("inkstyle", "sumi-e"),
                     nsfw_level: int = 1) -> dict:
    """A model-version document as Civitai returns it (and `.civitai.info` stores it)."""
    return {
        "id": version_id, "modelId": model_id, "name": "v1.0",
        "createdAt": "2024-01-01T00:00:00.000Z", "baseModel": base_model,
        "baseModelType": "Standard", "trainedWords": list(trained_words),
        "description": "<p>Ink wash <b>style</b> &amp; brush strokes.</p><p>Use at 0.8.</p>",
        "nsfwLevel": nsfw_level, "status": "Published",
        "model": {"name": name, "type": "LORA", "nsfw": False, "poi": False},
        "files": [{"id": 1, "name": "ink.safetensors", "type": "Model", "primary": True,
                   "hashes": {"SHA256": sha256.upper(), "AutoV2": sha256[:10].upper()}}],
        "images": [{"url": "https://image.civitai.com/x/1.jpeg", "nsfwLevel": 1, "width": 512,
                    "height": 768, "meta": {"prompt": "ink"}}],
        "downloadUrl": f"https://civitai.com/api/download/models/{version_id}",
    }


@dataclass
class FakeCivitai:
    """Scripted answers per hash: a list of (status, JSON body or None, headers), used in
    order, the last one repeated. Unscripted hashes get Civitai's 404."""

    url: str = ""
    answers: dict[str, list[tuple[int, object, dict]]] = field(default_factory=dict)
    requests: list[tuple[str, dict]] = field(default_factory=list)

    def found(self, sha256: str, **document) -> dict:
        body = version_document(sha256, **document)
        self.answers[sha256] = [(200, body, {})]
        return body

    def script(self, sha256: str, *answers: tuple[int, object, dict]) -> None:
        self.answers[sha256] = list(answers)

    def asked(self, sha256: str) -> int:
        return sum(1 for asked, _ in self.requests if asked == sha256)

    async def by_hash(self, request: web.Request) -> web.Response:
        sha = request.match_info["hash"].lower()
        self.requests.append((sha, dict(request.headers)))
        queue = self.answers.get(sha)
        if not queue:
            return web.json_response({"error": "Model not found"}, status=404)
        status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        if body is None:
            return web.Response(status=status, headers=headers, text="")
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def fake_civitai(aiohttp_server) -> FakeCivitai:
    fake = FakeCivitai()
    app = web.Application()
    app.router.add_get("/api/v1/model-versions/by-hash/{hash}", fake.by_hash)
    server = await aiohttp_server(app, host="127.0.0.1")
    fake.url = str(server.make_url("")).rstrip("/")
    return fake
