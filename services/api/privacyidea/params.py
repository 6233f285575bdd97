"""Request parameters the way privacyIDEA reads them (pi-validate.md §3, §7).

* GET reads the query string only; a GET body is ignored.
* POST reads the query string, then a form, multipart or JSON body on top of it.
* Every value from a query or form is then un-quoted once more (``urllib.parse.unquote``)
  unless the user agent's name is one of the plugins that never encode twice. The
  double-encoding plugins (Keycloak, Shibboleth, FreeRADIUS) depend on it, and so do the
  failures it causes for the single-encoding ones that are not exempt; JSON values are
  never un-quoted.
* Unknown parameters are ignored, as privacyIDEA does. Values longer than ``MAX_VALUE``
  are refused (privacyIDEA has no limit; no plugin sends anything near it).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, unquote

from fastapi import Request

from services.api.privacyidea.envelope import PiError
from services.core.storable import storable

NO_UNQUOTE_AGENTS = frozenset({"privacyidea-cp", "privacyidea-ldap-proxy", "simplesamlphp"})
_AGENT = re.compile(r"^(?P<agent>[a-zA-Z0-9_-]+)")
MAX_VALUE = 2048
MAX_PARAMS = 64


def agent_name(user_agent: str | None) -> str:
    """The plugin name of a user agent: ``privacyIDEA-Keycloak`` of
    ``privacyIDEA-Keycloak/1.8.0 Keycloak/26``."""
    match = _AGENT.match(user_agent or "")
    return match.group("agent") if match else ""


def unquotes(user_agent: str | None) -> bool:
    return agent_name(user_agent).lower() not in NO_UNQUOTE_AGENTS


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # what privacyIDEA's str() of a JSON bool gives
    if value is None:
        return ""
    if isinstance(value, (int, float, str)):
        return str(value)
    raise PiError(905, "ERR905: Parameters must be strings")


async def read(request: Request) -> dict[str, str]:
    """All parameters of ``request`` as strings."""
    again = unquotes(request.headers.get("user-agent"))
    pairs: list[tuple[str, str]] = list(parse_qsl(request.url.query, keep_blank_values=True))
    json_values: dict[str, str] = {}
    if request.method != "GET":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if content_type == "multipart/form-data":
                form = await request.form(max_files=0, max_fields=MAX_PARAMS)
                pairs += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            else:
                pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        elif body.strip():
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                data = None  # privacyIDEA ignores a body it cannot read
            if isinstance(data, dict):
                json_values = {str(k): _scalar(v) for k, v in data.items()}
    if len(pairs) + len(json_values) > MAX_PARAMS:
        raise PiError(905, "ERR905: Too many parameters")
    params = {k: unquote(v) if again else v for k, v in pairs}
    params.update(json_values)
    for key, value in params.items():
        if len(value) > MAX_VALUE or len(key) > 128:
            raise PiError(905, "ERR905: Parameter too long")
    if not storable(params):
        raise PiError(905, "ERR905: Invalid characters in parameters")
    return params


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")
