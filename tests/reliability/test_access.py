"""Who gets in: keys on every route but health and the WeCom callbacks (enumerated from the app, so a new
route without auth fails here), per-key rate limits (429), CORS closed by default, no secrets in logs."""

from __future__ import annotations

import contextlib
import logging
import re

import pytest
from starlette.routing import Mount

from api.app import create_app
from api.ratelimit import DEFAULT_KEYED_PER_MIN, RateLimiter, limit_for
from assistant.errors import AssistantError
from tests.api.conftest import api_settings, local_client
from tests.conftest import make_assistant
from tests.reliability.conftest import Reply
from tests.wecom.wecom_fakes import (
    AES_KEY,
    SECRET,
    TOKEN,
    SignedCallback,
    app_callback,
    bot_callback,
    text_xml,
)

REMOTE = ("10.1.2.3", 40000)
READER, ADMIN = "reader-key-7f3a9c1e2d", "admin-key-5b8e0d4c6a"
# Served without an API key, each for a reason (docs/security.md): liveness; WeCom signs its callbacks;
# the page and its assets hold no data (the page asks for a key); the API description is public.
PUBLIC = {"/healthz", "/wecom/app/callback", "/wecom/aibot/callback", "/", "/static",
          "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
SAMPLE_PATH_VALUES = {"key": "x.md", "doc_id": "d0", "chunk_id": "c0", "session_id": "abcdefgh12345678"}


def _routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, including routes hidden from the OpenAPI schema."""
    found: list[tuple[str, str]] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                found.append(("GET", prefix + route.path))
            elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps included routers as branches
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif getattr(route, "methods", None):
                found.extend((m, prefix + route.path) for m in sorted(route.methods) if m != "HEAD")

    walk(app.routes, "")
    documented = {path for path in app.openapi()["paths"]}
    assert documented <= {path for _, path in found}, documented - {path for _, path in found}
    return found


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE_PATH_VALUES.get(m[1], "x"), path)


@pytest.fixture
def keyed(small_kb):
    settings = api_settings(small_kb, api_keys=READER, admin_keys=ADMIN)
    with local_client(settings, client=REMOTE) as client:
        yield client


def test_every_route_needs_a_key_except_the_public_ones(keyed):
    routes = _routes(keyed.app)
    assert len(routes) >= 15, routes
    for method, path in routes:
        url = _url(path) + ("/app.js" if path == "/static" else "")
        anonymous = keyed.request(method, url, json={})
        if path in PUBLIC:
            assert anonymous.status_code != 401, (method, path)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.status_code, anonymous.text[:200])
        wrong = keyed.request(method, url, json={}, headers={"Authorization": "Bearer not-a-key"})
        assert wrong.status_code == 401, (method, path)
        admitted = keyed.request(method, url, json={}, headers={"Authorization": f"Bearer {ADMIN}"})
        assert admitted.status_code not in (401, 403), (method, path, admitted.text[:200])


def test_the_public_list_is_not_wider_than_the_app(keyed):
    paths = {path for _, path in _routes(keyed.app)}
    assert PUBLIC - paths <= {"/docs/oauth2-redirect"}, PUBLIC - paths


def test_a_key_gets_429_past_its_budget_and_other_keys_do_not(small_kb):
    settings = api_settings(small_kb, api_keys=f"{READER},{READER}-2", rate_limit_per_min=5)
    with local_client(settings, client=REMOTE) as client:
        first = {"Authorization": f"Bearer {READER}"}
        statuses = [client.get("/v1/documents", headers=first).status_code for _ in range(5)]
        assert statuses == [200] * 5
        refused = client.post("/v1/ask", json={"question": "校车"}, headers=first)
        assert refused.status_code == 429
        assert "DUTY_RATE_LIMIT_PER_MIN" in refused.json()["error"]
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/v1/documents", headers={"Authorization": f"Bearer {READER}-2"}).status_code == 200
        assert client.get("/healthz").status_code == 200  # health is never limited


def test_guessing_keys_is_rate_limited_per_address(small_kb):
    settings = api_settings(small_kb, api_keys=READER, rate_limit_per_min=3)
    with local_client(settings, client=REMOTE) as client:
        codes = [client.get("/v1/documents", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(5)]
        assert codes[:3] == [401] * 3 and codes[3:] == [429, 429]


def test_openai_routes_report_429_in_the_openai_shape(small_kb):
    settings = api_settings(small_kb, api_keys=READER, rate_limit_per_min=1)
    with local_client(settings, client=REMOTE) as client:
        headers = {"Authorization": f"Bearer {READER}"}
        assert client.get("/v1/models", headers=headers).status_code == 200
        refused = client.get("/v1/models", headers=headers)
        assert refused.status_code == 429 and refused.json()["error"]["message"]


def test_token_bucket_refills_at_the_configured_rate():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    who = RateLimiter.identity("key", "k")
    assert all(limiter.take(who) == 0.0 for _ in range(60))
    assert limiter.take(who) == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take(who) == 0.0 and limiter.take(who) > 0
    assert READER not in who and "k" != who.split(":")[1]


def test_default_limits(tmp_path):
    assert limit_for(api_settings(tmp_path, api_keys=READER)) == DEFAULT_KEYED_PER_MIN
    assert limit_for(api_settings(tmp_path)) == 0  # loopback-only: the one local user is not throttled
    assert limit_for(api_settings(tmp_path, api_keys=READER, rate_limit_per_min=0)) == 0
    assert limit_for(api_settings(tmp_path, rate_limit_per_min=30)) == 30


def test_cors_is_closed_by_default(small_client):
    preflight = small_client.options("/v1/ask", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert "access-control-allow-origin" not in preflight.headers
    simple = small_client.get("/v1/documents", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_only_the_configured_origins(small_kb):
    with local_client(api_settings(small_kb, cors_origins="https://intranet.school.cn")) as client:
        headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        good = client.options("/v1/ask", headers={"Origin": "https://intranet.school.cn", **headers})
        assert good.headers["access-control-allow-origin"] == "https://intranet.school.cn"
        evil = client.options("/v1/ask", headers={"Origin": "http://evil.example", **headers})
        assert evil.headers.get("access-control-allow-origin") != "http://evil.example"


def test_upload_size_and_type_limits(small_kb):
    with local_client(api_settings(small_kb, max_upload_mb=1)) as client:
        too_big = client.post("/v1/documents", files={"file": ("大.txt", "第一条 学校。".encode() * 100_000)})
        assert too_big.status_code == 413 and "DUTY_MAX_UPLOAD_MB" in too_big.json()["error"]
        declared = client.post("/v1/documents", content=b"x", headers={"Content-Length": str(50 * 1024 * 1024),
                                                                        "Content-Type": "multipart/form-data; boundary=x"})
        assert declared.status_code == 413
        for name in ("a.exe", "a.html", "a.svg", "a.zip", "a.doc"):
            assert client.post("/v1/documents", files={"file": (name, b"hello")}).status_code == 415, name


def _all_log_text(caplog) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def test_keys_never_appear_in_logs(small_kb, caplog):
    caplog.set_level(logging.DEBUG)
    settings = api_settings(small_kb, api_keys=READER, admin_keys=ADMIN)
    with local_client(settings, client=REMOTE) as client:
        assert client.post("/v1/ask", json={"question": "校车"}, headers={"Authorization": f"Bearer {READER}"}).status_code == 200
        assert client.post("/v1/ask", json={"question": "校车"}, headers={"Authorization": f"Bearer {READER}x"}).status_code == 401
        assert client.post("/v1/documents", files={"file": ("门卫.md", "第一条 门卫登记。".encode())},
                           headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 201
        client.post("/v1/ask", json={"question": 1}, headers={"Authorization": f"Bearer {ADMIN}"})
    text = _all_log_text(caplog)
    assert caplog.records, "expected start-up logs"
    for secret in (READER, ADMIN):
        assert secret not in text


@pytest.mark.shared
def test_wecom_secrets_never_appear_in_logs(start_wecom, laws_assistant, fake_wecom, caplog):
    caplog.set_level(logging.DEBUG)
    wecom = start_wecom(laws_assistant)
    assert wecom.post_app(app_callback(text_xml("zhangsan", "校车驾驶人需要什么条件", "9101"))).status_code == 200
    fake_wecom.wait_delivered(1)
    wecom.settle()
    wecom.post_bot(bot_callback({"msgid": "b1", "msgtype": "text", "text": {"content": "校车"}, "from": {"userid": "u"},
                                 "chattype": "single", "aibotid": "bot"}))
    forged = wecom.post_app(SignedCallback("msg_signature=bad&timestamp=1&nonce=1", b"<xml/>"))
    assert forged.status_code in (400, 403)
    text = _all_log_text(caplog)
    assert "gettoken" in text and "message/send" in text, "expected httpx to log the WeCom API calls (redacted)"
    assert fake_wecom.valid_token, "the flow should have fetched an access token"
    for secret in (SECRET, AES_KEY, TOKEN, fake_wecom.valid_token):
        assert secret not in text, secret


def test_app_without_lifespan_builds_no_limiter_state_leak(tmp_path):
    a, b = create_app(api_settings(tmp_path, rate_limit_per_min=1)), create_app(api_settings(tmp_path, rate_limit_per_min=1))
    assert a.state.rate_limiter is not b.state.rate_limiter


@pytest.mark.shared
def test_the_llm_api_key_never_appears_in_logs(laws_kb_dir, fake_llm, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "sk-llm-secret-9d8c7b6a5f4e"
    assistant = make_assistant(laws_kb_dir, llm_base_url=fake_llm.url, llm_model="fake-model", llm_api_key=secret,
                               llm_timeout_s=2.0, llm_max_retries=1)
    fake_llm.push(Reply("校车驾驶人应当取得校车驾驶资格。"))
    fake_llm.push(Reply("x", status=500))
    fake_llm.push(Reply("x", status=401))
    assistant.ask("校车驾驶人需要什么条件？", mode="llm")
    for _ in range(2):
        with contextlib.suppress(AssistantError):
            assistant.ask("校车驾驶人需要什么条件？", mode="llm")
    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {secret}"
    assistant.close()
    assert secret not in _all_log_text(caplog)
