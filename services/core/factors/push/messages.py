"""The challenge dictionary (push-protocol.md §4): the FCM ``data`` and one poll entry.

All values are strings. ``url`` is the Dart-canonical push endpoint, because the app
rebuilds the sign string from ``Uri.parse(url).toString()``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from cryptography.hazmat.primitives.asymmetric import rsa

from services.core.factors.push import crypto
from services.core.models import PushChallenge, PushToken
from services.core.plumbing.crypto import Keyring

_CACHE_SIZE = 1024
_keys: OrderedDict[str, rsa.RSAPrivateKey] = OrderedDict()
_keys_lock = threading.Lock()


def server_key(keyring: Keyring, push_token: PushToken) -> rsa.RSAPrivateKey:
    """The token's server key, decrypted and parsed once per process (RSA 4096 parsing with
    its consistency check costs milliseconds, every challenge and poll signs with it)."""
    enc = push_token.server_key_enc
    if not enc:
        raise LookupError("the push token has no server key (enrollment step 2 missing)")
    with _keys_lock:
        key = _keys.get(enc)
        if key is not None:
            _keys.move_to_end(enc)
            return key
    key = crypto.load_private_key(keyring.decrypt(enc))
    with _keys_lock:
        _keys[enc] = key
        while len(_keys) > _CACHE_SIZE:
            _keys.popitem(last=False)
    return key


def challenge_data(
    key: rsa.RSAPrivateKey, pc: PushChallenge, serial: str, url: str
) -> dict[str, str]:
    """Build and sign the §4 dictionary for one push challenge."""
    sign_string = f"{pc.nonce}|{url}|{serial}|{pc.question}|{pc.title}|{pc.sslverify}"
    data = {
        "nonce": pc.nonce,
        "question": pc.question,
        "serial": serial,
        "title": pc.title,
        "sslverify": pc.sslverify,
        "url": url,
    }
    if pc.options:
        sign_string += f"|{pc.options}"
        data["require_presence"] = pc.options
        data["version"] = "2"  # not signed, only sent with require_presence
    data["signature"] = crypto.sign_b32(key, sign_string)
    data["capabilities"] = crypto.capabilities_json()
    data["capabilities_signature"] = crypto.sign_b32(key, crypto.capabilities_sign_string(pc.nonce))
    return data
