"""``uvicorn services.portal.asgi:app`` (``twofa portal serve`` uses it)."""

from services.portal.app import create_app

app = create_app()
