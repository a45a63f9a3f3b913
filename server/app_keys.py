"""The typed keys under which create_app hands shared objects to the handlers."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from .api_key import ApiKey
from .config import Config
from .events import Events
from .images import Gallery
from .integrity import LibraryState
from .jobs import Jobs
from .queue import Queue
from .scanner import Scanner
from .store import Store

CONFIG = web.AppKey("config", Config)
API_KEY = web.AppKey("api_key", ApiKey)
STORE = web.AppKey("store", Store)
GALLERY = web.AppKey("gallery", Gallery)
EVENTS = web.AppKey("events", Events)
IMAGE_THREADS = web.AppKey("image_threads", ThreadPoolExecutor)
STARTED_AT = web.AppKey("started_at", float)
JOBS = web.AppKey("jobs", Jobs)
SCANNER = web.AppKey("scanner", Scanner)
GEN_QUEUE = web.AppKey("gen_queue", Queue)  # generation jobs (JOBS are the scan/hash jobs)
LIBRARY_STATE = web.AppKey("library_state", LibraryState)  # read-only after a failed check
