"""Who is served: Bearer keys when configured; otherwise loopback clients only. Refusals say why."""

from __future__ import annotations

import pytest

from tests.api.conftest import api_settings, local_client

ASK = {"question": "校车驾驶人需要具备什么条件？"}
REMOTE = ("10.1.2.3", 40000)


@pytest.fixture
def keyed(small_kb):
    settings = api_settings(small_kb, api_keys="reader-key, second-key", admin_keys="admin-key")
    with local_client(settings, client=REMOTE) as client:
        yield client


def test_without_keys_a_remote_client_gets_403_with_the_fix(small_kb):
    with local_client(api_settings(small_kb), client=REMOTE) as client:
        for response in (client.post("/v1/ask", json=ASK), client.get("/v1/documents"), client.get("/")):
            assert response.status_code == 403
            assert "DUTY_API_KEYS" in response.json()["error"]
        assert client.get("/healthz").json()["auth"] == "loopback-only"


def test_without_keys_a_loopback_client_is_served(small_client):
    assert small_client.post("/v1/ask", json=ASK).status_code == 200
    assert small_client.get("/").status_code == 200


def test_without_keys_ipv6_loopback_is_served(small_kb):
    with local_client(api_settings(small_kb), client=("::1", 50000)) as client:
        assert client.get("/v1/documents").status_code == 200


def test_without_keys_a_foreign_host_name_is_refused(small_client):
    # A page on evil.example whose DNS points at 127.0.0.1 (DNS rebinding) must not reach the API.
    response = small_client.get("/v1/documents", headers={"Host": "evil.example:8000"})
    assert response.status_code == 403 and "127.0.0.1" in response.json()["error"]
    assert small_client.get("/v1/documents", headers={"Host": "localhost:8000"}).status_code == 200


def test_cross_site_posts_are_refused_but_same_origin_pass(small_client):
    evil = small_client.post("/v1/documents", files={"file": ("x.md", "第一条 学校。".encode())},
                             headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "DUTY_CORS_ORIGINS" in evil.json()["error"]
    assert len(small_client.get("/v1/documents", headers={"Origin": "http://evil.example"}).json()["documents"]) == 3
    same = small_client.post("/v1/ask", json=ASK, headers={"Origin": "http://127.0.0.1:8000"})
    assert same.status_code == 200


def test_keys_missing_or_wrong_is_401(keyed):
    missing = keyed.post("/v1/ask", json=ASK)
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["error"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = keyed.post("/v1/ask", json=ASK, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "invalid API key" in wrong.json()["error"]
    not_bearer = keyed.post("/v1/ask", json=ASK, headers={"Authorization": "Basic cmVhZGVyLWtleQ=="})
    assert not_bearer.status_code == 401


def test_keys_let_remote_clients_in(keyed):
    for key in ("reader-key", "second-key", "admin-key"):
        response = keyed.post("/v1/ask", json=ASK, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, key
    assert keyed.get("/healthz").json()["auth"] == "api-keys"
    assert keyed.get("/").status_code == 200  # the page itself holds no data; it asks for a key


def test_only_admin_keys_change_documents(keyed, small_kb):
    upload = {"file": ("门卫.md", "第一条 门卫应当登记来访人员。".encode())}
    reader = keyed.post("/v1/documents", files=upload, headers={"Authorization": "Bearer reader-key"})
    assert reader.status_code == 403 and "DUTY_ADMIN_KEYS" in reader.json()["error"]
    assert not (small_kb / "uploads").exists()
    admin = keyed.post("/v1/documents", files=upload, headers={"Authorization": "Bearer admin-key"})
    assert admin.status_code == 201
    removed = keyed.delete("/v1/documents/门卫.md", headers={"Authorization": "Bearer reader-key"})
    assert removed.status_code == 403


def test_openai_routes_use_the_openai_error_shape(keyed):
    response = keyed.get("/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Bearer" in response.json()["error"]["message"]
