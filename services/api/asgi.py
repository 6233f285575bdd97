"""The ASGI entry point for uvicorn: Settings from the environment, read once."""

from services.api.app import create_app
from services.core.plumbing.settings import Settings

app = create_app(Settings())
