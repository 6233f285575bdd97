"""PSKC files (RFC 6030) as import records, read with ``python-pskc``.

Hardware-token vendors and other servers hand seeds over this way, in the clear or
encrypted with a pre-shared key (``--psk``, hex) or a key derived from a password (PBKDF2,
``--password``). A PSKC file names no owners: ``--assign`` gives them, a CSV of ``serial,user``.

privacyIDEA's ``pi-tokenjanitor … export --format pskc`` writes every element and attribute
name in lower case (``keycontainer``, ``algorithm=``), which strict readers refuse; names
are put back into their RFC 6030 spelling before the file is read. It also writes the TOTP
clock offset in seconds with a fraction (``-30.0``) where RFC 6030 has whole time steps
(such a value is taken as seconds), and the hash in an attribute (``<suite hashalgo=…>``).
"""

from __future__ import annotations

import csv
import io
import re
from xml.etree import ElementTree as ET

import pskc
from pskc.exceptions import DecryptionError, KeyDerivationError
from pskc.exceptions import ParseError as PskcParseError

from services.core.imports.records import ImportFileError, ImportRecord

# Every element and attribute name python-pskc reads (RFC 6030, XML Encryption 1.0/1.1,
# PKCS #5, XML Signature, and the draft profiles some vendors still write).
NAMES = (
    "KeyContainer", "KeyPackage", "Key", "DeviceInfo", "Manufacturer", "SerialNo", "Model",
    "IssueNo", "DeviceBinding", "StartDate", "ExpiryDate", "UserId", "CryptoModuleInfo", "Id",
    "Issuer", "AlgorithmParameters", "Suite", "ChallengeFormat", "ResponseFormat", "Data",
    "Secret", "Counter", "Time", "TimeInterval", "TimeDrift", "PlainValue", "EncryptedValue",
    "ValueMAC", "Policy", "PINPolicy", "KeyUsage", "NumberOfTransactions", "FriendlyName",
    "KeyProfileId", "KeyReference", "EncryptionKey", "MACMethod", "MACKey", "MACKeyReference",
    "Extensions", "Signature", "Device", "KeyName", "DerivedKey", "KeyDerivationMethod",
    "ReferenceList", "DataReference", "MasterKeyName", "CarriedKeyName", "EncryptionMethod",
    "CipherData", "CipherValue", "PBKDF2-params", "Salt", "Specified", "IterationCount",
    "KeyLength", "PRF", "X509Data", "X509Certificate", "X509IssuerSerial", "X509IssuerName",
    "X509SerialNumber", "SignedInfo", "CanonicalizationMethod", "SignatureMethod", "Reference",
    "DigestMethod", "DigestValue", "SignatureValue", "KeyInfo", "Transforms", "Transform",
    "Usage", "SecretContainer", "KeyAlgorithm", "KeyId", "Version", "Algorithm", "Encoding",
    "Length", "Min", "Max", "CheckDigits", "Format", "MinLength", "MaxLength", "PINKeyId",
    "PINEncoding", "PINUsageMode", "MaxFailedAttempts", "URI", "OTP", "CR", "Integrity",
    "Encrypt", "Unlock",
)
_CANONICAL = {name.lower(): name for name in NAMES}
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_TOTP_SUITES = {"sha1": "SHA1", "sha256": "SHA256", "sha512": "SHA512"}


def read(data: bytes, *, owners: dict[str, str], psk: str | None = None,
         password: str | None = None) -> list[ImportRecord]:
    container = _container(data)
    encryption = container.encryption
    if encryption.is_encrypted:
        if psk is None and password is None:
            raise ImportFileError("the seeds are encrypted: give --psk or --password")
        if psk is not None:
            try:
                encryption.key = bytes.fromhex(psk.strip())
            except ValueError:
                raise ImportFileError("--psk is not hex") from None
        elif password is not None:
            try:
                encryption.derive_key(password)
            except (KeyDerivationError, DecryptionError, ValueError, TypeError):
                raise ImportFileError(
                    "the file's key derivation is not usable with --password") from None
    records = [_record(f"key {n}", key, owners) for n, key in enumerate(container.keys, 1)]
    if not records:
        raise ImportFileError("the file holds no keys")
    return records


def read_assignments(text: str) -> dict[str, str]:
    """``serial,user`` lines (a ``serial,user`` header and ``#`` comments allowed)."""
    owners: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and [c.lower() for c in cells[:2]] == ["serial", "user"]:
            continue
        if len(cells) != 2 or not all(cells):
            raise ImportFileError(f"--assign line {number}: expected serial,user")
        serial, user = cells
        if serial in lines:
            raise ImportFileError(f"--assign line {number}: serial {serial[:32]!r} is assigned "
                                  f"on line {lines[serial]} already")
        owners[serial], lines[serial] = user, number
    return owners


def _container(data: bytes) -> pskc.PSKC:
    if _DTD.search(data):
        raise ImportFileError("the file has a DTD; PSKC files have none (refused)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        raise ImportFileError("not XML: the file is truncated or malformed") from None
    for element in root.iter():
        element.tag = _canonical_tag(element.tag)
        for name in [n for n in element.attrib if n.lower() in _CANONICAL and n not in NAMES]:
            element.attrib[_CANONICAL[name.lower()]] = element.attrib.pop(name)
        if _local(element.tag) == "Suite" and not (element.text or "").strip():
            element.text = element.get("hashalgo")  # privacyIDEA names the hash in an attribute
    for data_element in root.iter():
        if _local(data_element.tag) == "Data":
            _drift_in_steps(data_element)
    try:
        return pskc.PSKC(io.BytesIO(ET.tostring(root)))
    except (PskcParseError, ValueError, TypeError):
        raise ImportFileError("not a PSKC key container (RFC 6030)") from None


def _canonical_tag(tag: str) -> str:
    namespace, brace, local = tag.rpartition("}")
    return f"{namespace}{brace}{_CANONICAL.get(local.lower(), local)}"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _value(data: ET.Element, name: str) -> ET.Element | None:
    for child in data:
        if _local(child.tag) == name:
            for value in child:
                if _local(value.tag) == "PlainValue":
                    return value
    return None


def _drift_in_steps(data: ET.Element) -> None:
    """privacyIDEA's drift in seconds (``-30.0``) as RFC 6030's whole time steps."""
    drift, interval = _value(data, "TimeDrift"), _value(data, "TimeInterval")
    text = (drift.text or "").strip() if drift is not None else ""
    if drift is None or "." not in text:
        return
    try:
        period = int((interval.text or "30").strip()) if interval is not None else 30
        drift.text = str(int(float(text) / max(period, 1)))  # as records.py: a part step is none
    except ValueError:
        return  # python-pskc refuses it, as it would any malformed number


def _record(position: str, key: pskc.key.Key, owners: dict[str, str]) -> ImportRecord:
    serial = key.serial or key.id or ""
    algorithm = (key.algorithm or "").rstrip("/")
    token_type = re.split(r"[:#/]", algorithm)[-1].lower() if algorithm else "?"
    base = ImportRecord(position, serial, token_type, owner=owners.get(serial))
    if not serial:
        return _replace(base, problem="the key has no serial or id")
    try:
        secret = key.secret
    except DecryptionError:
        raise ImportFileError(
            "the seeds do not decrypt: a wrong --psk or --password, or the file was changed"
        ) from None
    if secret is None:
        return _replace(base, problem="the key has no seed, or it is encrypted (give --psk or "
                                      "--password)")
    suite = (key.algorithm_suite or "").lower().replace("hmac-", "")
    return _replace(
        base,
        description=str(key.friendly_name or key.manufacturer or "")[:64],
        secret=bytes(secret),
        digits=key.response_length or 6,
        period=key.time_interval or 30,
        algorithm=_TOTP_SUITES.get(suite, suite.upper() or "SHA1"),
        last_step=key.counter or None,
        drift_seconds=float((key.time_drift or 0) * (key.time_interval or 30)),
    )


def _replace(base: ImportRecord, **changes: object) -> ImportRecord:
    from dataclasses import replace

    return replace(base, **changes)  # type: ignore[arg-type]


