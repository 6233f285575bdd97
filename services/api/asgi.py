"""The ASGI entry point for uvicorn: Settings from the environment, read once; each API
process (uvicorn may start several) configures its own logging."""

from services.api.app import create_app
from services.core.plumbing import logs
from services.core.plumbing.settings import Settings

settings = Settings()
logs.configure(settings)
app = create_app(settings)
