"""Fake of ComfyUI's `server.PromptServer` (COMFYUI.md §2.1, §8a): a real RouteTableDef and
Application; `add_routes` gives every RouteDef its /api twin, then the extension statics."""
from aiohttp import web


class PromptServer:
    instance = None

    def __init__(self, loop=None):
        PromptServer.instance = self
        self.loop = loop
        self.routes = web.RouteTableDef()
        self.app = web.Application()
        self.sent = []

    def send_sync(self, event, data, sid=None):
        self.sent.append((event, data, sid))

    def add_routes(self, web_dirs=None):
        api_routes = web.RouteTableDef()
        for route in self.routes:
            if isinstance(route, web.RouteDef):
                api_routes.route(route.method, "/api" + route.path)(route.handler, **route.kwargs)
        self.app.add_routes(api_routes)
        self.app.add_routes(self.routes)
        for name, folder in (web_dirs or {}).items():
            self.app.add_routes([web.static("/extensions/" + name, folder)])
