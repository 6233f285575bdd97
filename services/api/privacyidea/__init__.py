"""The privacyIDEA-compatible HTTP edge: ``/validate/*`` and ``/auth`` as privacyIDEA 3.14's
login plugins call them (pi-validate.md). Parsing, the envelope, the JWT of service
accounts and CORS live here; what is decided lives in ``services.core.privacyidea``."""
