"""The WeCom routes inside the real application (``api.app.create_app``): lifespan-built assistant over the
bundled corpus, API keys required on /v1 but not on the WeCom callbacks (WeCom signs them instead)."""

from __future__ import annotations

import httpx

from api.app import create_app
from tests.wecom.conftest import wecom_settings
from tests.wecom.wecom_fakes import app_callback, bot_callback, open_bot_reply, serve_asgi, text_xml


def test_callbacks_are_served_by_create_app_without_api_keys(tmp_path, fake_wecom):
    settings = wecom_settings(tmp_path / "kb", fake_wecom.base_url, api_keys="only-for-v1")
    with serve_asgi(create_app(settings)) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/v1/search", json={"query": "校长"}).status_code == 401  # /v1 is keyed …
        callback = app_callback(text_xml("zhangsan", "学校安全领导体系怎么建立", "5001"))
        response = http.post(f"/wecom/app/callback?{callback.query}", content=callback.body)
        assert response.status_code == 200 and response.content == b""  # … WeCom callbacks are signed
        (sent,) = fake_wecom.wait_delivered(1)
        assert sent["touser"] == "zhangsan" and "〔《校长一岗双责述职报告" in sent["text"]["content"]

        message = {
            "msgid": "b-1",
            "aibotid": "A",
            "chattype": "single",
            "from": {"userid": "lisi"},
            "msgtype": "text",
            "text": {"content": "设置角色 校长"},
        }
        callback = bot_callback(message)
        reply = open_bot_reply(http.post(f"/wecom/aibot/callback?{callback.query}", content=callback.body))
        assert reply["stream"]["finish"] is True and "校长" in reply["stream"]["content"]
