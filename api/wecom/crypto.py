"""WeCom (企业微信) callback crypto: signatures, AES-256-CBC message crypto, reply envelopes, safe XML.

Pure functions, no global state. Scheme (WeCom docs 90968 / 101033, see ``shared/specs/wecom.md`` §1.3, §1.4):

* ``msg_signature = sha1(''.join(sorted([token, timestamp, nonce, encrypt]))).hexdigest()``
* key = base64(EncodingAESKey + "="), 32 bytes; AES-256-CBC with IV = key[:16];
  plaintext = random(16) + len(msg) (4 bytes, big-endian) + msg + ReceiveId, PKCS#7-padded to 32 bytes.
* ReceiveId is the CorpID for self-built apps and ``""`` for the AI bot (智能机器人).

Always verify the signature *before* decrypting: the distinct padding / ReceiveId errors must not be reachable
by unauthenticated input (padding oracle).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct
import time
from enum import StrEnum
from xml.etree.ElementTree import ParseError

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_MAX_XML_BYTES",
    "InvalidKeyError",
    "InvalidPaddingError",
    "InvalidSignatureError",
    "MalformedInputError",
    "Reason",
    "ReceiveIdMismatchError",
    "StaleTimestampError",
    "WeComCryptoError",
    "build_json_reply",
    "build_xml_reply",
    "check_signature",
    "check_timestamp",
    "decrypt",
    "encrypt",
    "parse_xml",
    "signature",
    "verify_signature",
]

BLOCK_SIZE = 32
"""PKCS#7 block size used by WeCom (not the AES block size of 16)."""

DEFAULT_MAX_XML_BYTES = 64 * 1024

_RANDOM_ALPHABET = string.ascii_letters + string.digits
_KEY_ALPHABET = frozenset(string.ascii_letters + string.digits)
_PREFIX_LEN = 16
_LEN_FIELD = 4


# --------------------------------------------------------------------------------------------- errors


class Reason(StrEnum):
    """Machine-readable failure category carried by every :class:`WeComCryptoError`."""

    BAD_SIGNATURE = "bad_signature"
    BAD_PADDING = "bad_padding"
    WRONG_RECEIVE_ID = "wrong_receive_id"
    STALE_TIMESTAMP = "stale_timestamp"
    MALFORMED_INPUT = "malformed_input"
    INVALID_KEY = "invalid_key"


class WeComCryptoError(Exception):
    """Base error of this module; ``reason`` says which check failed."""

    reason: Reason = Reason.MALFORMED_INPUT


class InvalidSignatureError(WeComCryptoError):
    """msg_signature does not match."""

    reason = Reason.BAD_SIGNATURE


class InvalidPaddingError(WeComCryptoError):
    """Decrypted data does not end in valid 32-byte PKCS#7 padding."""

    reason = Reason.BAD_PADDING


class ReceiveIdMismatchError(WeComCryptoError):
    """Trailing ReceiveId differs from the expected CorpID / ``""``."""

    reason = Reason.WRONG_RECEIVE_ID


class StaleTimestampError(WeComCryptoError):
    """Callback timestamp is outside the allowed clock skew."""

    reason = Reason.STALE_TIMESTAMP


class MalformedInputError(WeComCryptoError):
    """Input is not well-formed (base64, lengths, layout, UTF-8, XML, size)."""

    reason = Reason.MALFORMED_INPUT


class InvalidKeyError(WeComCryptoError):
    """EncodingAESKey is not a 43-character key decoding to 32 bytes."""

    reason = Reason.INVALID_KEY


# ----------------------------------------------------------------------------------------- signature


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Compute a WeCom ``msg_signature``.

    Args:
        token: The callback Token from the admin console.
        timestamp: The ``timestamp`` query parameter, as received.
        nonce: The ``nonce`` query parameter, as received.
        encrypted: The base64 ciphertext (``Encrypt`` / ``encrypt`` / ``echostr``).

    Returns:
        40 lowercase hex chars: SHA-1 over the four strings sorted and concatenated.
    """
    parts = [token, timestamp, nonce, encrypted]
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"signature inputs must be str, got {type(part).__name__}")
    # Code-point order of str equals byte order of their UTF-8 encodings.
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def verify_signature(token: str, timestamp: str, nonce: str, encrypted: str, msg_signature: str) -> bool:
    """Check a ``msg_signature`` in constant time.

    Args:
        token: The callback Token.
        timestamp: The ``timestamp`` query parameter.
        nonce: The ``nonce`` query parameter.
        encrypted: The base64 ciphertext that was signed.
        msg_signature: The received signature (lowercase hex).

    Returns:
        True if the signature matches.
    """
    expected = signature(token, timestamp, nonce, encrypted).encode("ascii")
    given = msg_signature.encode("utf-8") if isinstance(msg_signature, str) else b""
    return hmac.compare_digest(expected, given)


def check_signature(token: str, timestamp: str, nonce: str, encrypted: str, msg_signature: str) -> None:
    """Like :func:`verify_signature` but raises.

    Args:
        token: The callback Token.
        timestamp: The ``timestamp`` query parameter.
        nonce: The ``nonce`` query parameter.
        encrypted: The base64 ciphertext that was signed.
        msg_signature: The received signature.

    Raises:
        InvalidSignatureError: The signature does not match.
    """
    if not verify_signature(token, timestamp, nonce, encrypted, msg_signature):
        raise InvalidSignatureError(
            "msg_signature does not match sha1(sorted(token, timestamp, nonce, encrypt))"
        )


def check_timestamp(timestamp: str, *, max_skew_s: int, now: float | None = None) -> None:
    """Reject callbacks whose timestamp is too far from the local clock.

    Args:
        timestamp: The ``timestamp`` query parameter (Unix seconds, decimal digits).
        max_skew_s: Allowed absolute difference in seconds; 0 disables the check entirely.
        now: Current Unix time; defaults to ``time.time()``.

    Raises:
        StaleTimestampError: ``|now - timestamp| > max_skew_s``.
        MalformedInputError: The timestamp is not a decimal integer (only when the check is enabled).
        ValueError: ``max_skew_s`` is negative.
    """
    if max_skew_s < 0:
        raise ValueError(f"max_skew_s must be >= 0, got {max_skew_s}")
    if max_skew_s == 0:
        return
    if not _is_digits(timestamp):
        raise MalformedInputError(f"timestamp must be decimal digits, got {timestamp!r:.40}")
    ts = int(timestamp)
    current = time.time() if now is None else now
    skew = abs(current - ts)
    if skew > max_skew_s:
        raise StaleTimestampError(f"timestamp {ts} is {skew:.0f} s away from now (max {max_skew_s} s)")


# ------------------------------------------------------------------------------------------ AES layer


def _aes_key(aes_key_b64: str) -> bytes:
    if not isinstance(aes_key_b64, str) or len(aes_key_b64) != 43:
        length = len(aes_key_b64) if isinstance(aes_key_b64, str) else type(aes_key_b64).__name__
        raise InvalidKeyError(f"EncodingAESKey must be 43 characters, got {length}")
    if not set(aes_key_b64) <= _KEY_ALPHABET:
        raise InvalidKeyError("EncodingAESKey must contain only [A-Za-z0-9]")
    key = base64.b64decode(aes_key_b64 + "=", validate=True)
    if len(key) != 32:  # pragma: no cover - 43 alnum chars always decode to 32 bytes
        raise InvalidKeyError(f"EncodingAESKey decodes to {len(key)} bytes, need 32")
    return key


def _cipher(key: bytes) -> Cipher:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def _pad(data: bytes) -> bytes:
    k = BLOCK_SIZE - len(data) % BLOCK_SIZE  # 1..32; a full block of 0x20 when already aligned
    return data + bytes([k]) * k


def _unpad(data: bytes) -> bytes:
    if not data or len(data) % BLOCK_SIZE:
        raise InvalidPaddingError(f"decrypted length {len(data)} is not a positive multiple of {BLOCK_SIZE}")
    k = data[-1]
    if not 1 <= k <= BLOCK_SIZE:
        raise InvalidPaddingError(f"pad byte {k} outside 1..{BLOCK_SIZE}")
    if not hmac.compare_digest(data[-k:], bytes([k]) * k):
        raise InvalidPaddingError(f"the last {k} bytes are not all equal to {k} (bad PKCS#7 padding)")
    return data[:-k]


def decrypt(aes_key_b64: str, encrypted_b64: str, *, receive_id: str) -> str:
    """Decrypt a WeCom ciphertext (``Encrypt`` / ``encrypt`` / ``echostr``).

    There is no option to skip the ReceiveId check: WeCom always appends one (CorpID for self-built apps,
    ``""`` for the AI bot), so a mismatch always means wrong configuration or a forged message.

    Args:
        aes_key_b64: The 43-character EncodingAESKey.
        encrypted_b64: Standard base64 ciphertext (already URL-decoded once).
        receive_id: Expected trailing ReceiveId: the CorpID, or ``""`` for the AI bot.

    Returns:
        The message (UTF-8 decoded).

    Raises:
        InvalidKeyError: Bad EncodingAESKey.
        MalformedInputError: Not base64, wrong length, or inconsistent inner layout / UTF-8.
        InvalidPaddingError: Padding is not valid 32-byte PKCS#7.
        ReceiveIdMismatchError: The trailing ReceiveId is not ``receive_id``.
    """
    key = _aes_key(aes_key_b64)
    if not isinstance(encrypted_b64, str):
        raise MalformedInputError(f"ciphertext must be a base64 str, got {type(encrypted_b64).__name__}")
    try:
        raw = base64.b64decode(encrypted_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInputError(f"ciphertext is not valid base64: {exc}") from None
    if not raw or len(raw) % BLOCK_SIZE:
        raise MalformedInputError(
            f"ciphertext is {len(raw)} bytes; must be a positive multiple of {BLOCK_SIZE} (truncated?)"
        )
    decryptor = _cipher(key).decryptor()
    body = _unpad(decryptor.update(raw) + decryptor.finalize())
    if len(body) < _PREFIX_LEN + _LEN_FIELD:
        raise MalformedInputError(f"plaintext too short ({len(body)} bytes) for random(16) + length(4)")
    (msg_len,) = struct.unpack(">I", body[_PREFIX_LEN : _PREFIX_LEN + _LEN_FIELD])
    rest = body[_PREFIX_LEN + _LEN_FIELD :]
    if msg_len > len(rest):
        raise MalformedInputError(
            f"declared message length {msg_len} exceeds the {len(rest)} bytes available"
        )
    msg, tail = rest[:msg_len], rest[msg_len:]
    expected = receive_id.encode("utf-8")
    if tail != expected:
        raise ReceiveIdMismatchError(
            f"ReceiveId mismatch: expected {receive_id!r}, got {tail.decode('utf-8', 'replace')!r:.80}"
        )
    try:
        return msg.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInputError(f"message is not valid UTF-8: {exc}") from None


def encrypt(aes_key_b64: str, plaintext: str, *, receive_id: str, random16: bytes | None = None) -> str:
    """Encrypt a message the way WeCom expects.

    Args:
        aes_key_b64: The 43-character EncodingAESKey.
        plaintext: The message (XML or JSON text).
        receive_id: The ReceiveId to append: the CorpID, or ``""`` for the AI bot.
        random16: Fixed 16-byte prefix for reproducible output (tests only). Default: 16 fresh random
            ASCII letters/digits, as the official libraries use; never reuse a prefix in production.

    Returns:
        Standard base64 ciphertext.

    Raises:
        InvalidKeyError: Bad EncodingAESKey.
        ValueError: ``random16`` is not exactly 16 bytes or the message is too long.
    """
    key = _aes_key(aes_key_b64)
    if random16 is None:
        random16 = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(_PREFIX_LEN)).encode("ascii")
    if not isinstance(random16, bytes | bytearray) or len(random16) != _PREFIX_LEN:
        raise ValueError("random16 must be exactly 16 bytes")
    msg = plaintext.encode("utf-8")
    if len(msg) > 0xFFFFFFFF:
        raise ValueError("message too long for the 4-byte length field")
    data = _pad(bytes(random16) + struct.pack(">I", len(msg)) + msg + receive_id.encode("utf-8"))
    encryptor = _cipher(key).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")


# ---------------------------------------------------------------------------------------- envelopes


def _check_envelope_params(timestamp: str, nonce: str) -> None:
    if not _is_digits(timestamp):
        raise ValueError(f"timestamp must be decimal digits, got {timestamp!r:.40}")
    if not nonce or not all("\x21" <= ch <= "\x7e" for ch in nonce) or "]]>" in nonce:
        raise ValueError(f"nonce must be printable ASCII without spaces or ']]>', got {nonce!r:.40}")


def build_xml_reply(
    token: str,
    aes_key_b64: str,
    plaintext: str,
    *,
    receive_id: str,
    timestamp: str,
    nonce: str,
    random16: bytes | None = None,
) -> str:
    """Encrypt and sign a passive reply for a self-built app (XML form, doc 90241/96469).

    Args:
        token: The callback Token.
        aes_key_b64: The 43-character EncodingAESKey.
        plaintext: The reply XML (``<xml><ToUserName>…</xml>``).
        receive_id: The CorpID.
        timestamp: Unix seconds as decimal string (may reuse the request's).
        nonce: Nonce string (may reuse the request's).
        random16: Fixed prefix for reproducible output (tests only).

    Returns:
        ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`` as a string.
    """
    _check_envelope_params(timestamp, nonce)
    enc = encrypt(aes_key_b64, plaintext, receive_id=receive_id, random16=random16)
    sig = signature(token, timestamp, nonce, enc)
    return (
        "<xml>\n"
        f"<Encrypt><![CDATA[{enc}]]></Encrypt>\n"
        f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>\n"
        f"<TimeStamp>{timestamp}</TimeStamp>\n"
        f"<Nonce><![CDATA[{nonce}]]></Nonce>\n"
        "</xml>"
    )


def build_json_reply(
    token: str,
    aes_key_b64: str,
    plaintext: str,
    *,
    receive_id: str,
    timestamp: str,
    nonce: str,
    random16: bytes | None = None,
) -> dict[str, str | int]:
    """Encrypt and sign a passive reply for the AI bot (JSON form, doc 101033).

    Args:
        token: The callback Token.
        aes_key_b64: The 43-character EncodingAESKey.
        plaintext: The reply JSON text (e.g. a ``stream`` message).
        receive_id: ``""`` for the AI bot.
        timestamp: Unix seconds as decimal string; emitted as a JSON number, signed as the string.
        nonce: Must be the nonce from the callback URL.
        random16: Fixed prefix for reproducible output (tests only).

    Returns:
        ``{"encrypt", "msgsignature", "timestamp", "nonce"}``; serialize with ``json.dumps``.
    """
    _check_envelope_params(timestamp, nonce)
    enc = encrypt(aes_key_b64, plaintext, receive_id=receive_id, random16=random16)
    return {
        "encrypt": enc,
        "msgsignature": signature(token, timestamp, nonce, enc),
        "timestamp": int(timestamp),
        "nonce": nonce,
    }


# ---------------------------------------------------------------------------------------------- XML


def parse_xml(body: bytes | str, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> dict[str, str]:
    """Parse a WeCom XML document into its flat top-level fields.

    DTDs, entity declarations and external references are rejected. Values may be CDATA or plain text and
    are stripped of surrounding whitespace; an element with children maps to its own (stripped) text only.

    Args:
        body: Raw request body or decrypted plaintext (``str`` is encoded as UTF-8).
        max_bytes: Reject inputs larger than this many bytes.

    Returns:
        ``{tag: text}`` for each child of the ``<xml>`` root.

    Raises:
        MalformedInputError: Oversize, not well-formed, forbidden DTD/entity, wrong root, or duplicate tags.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes | bytearray):
        raise MalformedInputError(f"XML body must be bytes or str, got {type(body).__name__}")
    if len(body) > max_bytes:
        raise MalformedInputError(f"XML body is {len(body)} bytes, limit is {max_bytes}")
    try:
        root = DefusedET.fromstring(bytes(body), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedInputError(f"forbidden XML construct: {exc!r}") from None
    except ParseError as exc:
        raise MalformedInputError(f"XML is not well-formed: {exc}") from None
    if root.tag != "xml":
        raise MalformedInputError(f"root element must be <xml>, got <{root.tag:.40}>")
    fields: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str):  # pragma: no cover - comments/PIs are dropped by the parser
            continue
        if child.tag in fields:
            raise MalformedInputError(f"duplicate element <{child.tag:.40}>")
        fields[child.tag] = (child.text or "").strip()
    return fields


# -------------------------------------------------------------------------------------------- helpers


def _is_digits(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit()
