# jcs (RFC 8785 JSON canonicalization) ships no type information; this is its whole public API.
from typing import Literal, overload

@overload
def canonicalize(obj: object, utf8: Literal[True] = ...) -> bytes: ...
@overload
def canonicalize(obj: object, utf8: Literal[False]) -> str: ...
