"""Self-built app (自建应用) channel: encrypted XML callbacks in, ``message/send`` text replies out.

WeCom waits at most 5 s for a callback and then retries (three times in all), so a callback is only verified,
decrypted, deduplicated and queued; it is acknowledged with an empty 200 and answered from a worker thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from api.wecom import crypto
from api.wecom.client import WeComClient
from api.wecom.common import MAX_BODY_BYTES, CallbackRejected, Dispatcher, authenticate, missing_settings
from api.wecom.crypto import WeComCryptoError
from api.wecom.dedupe import ReplayCache, replay_ttl
from api.wecom.dialog import NON_TEXT_REPLY, Dialog, help_text
from api.wecom.render import Reply
from api.wecom.sender import ReplySender
from api.wecom.splitter import APP_TEXT_LIMIT
from assistant.config import Settings

__all__ = ["CALLBACK_SETTINGS", "MAX_PIECES", "SEND_SETTINGS", "AppChannel", "InboundMessage"]

log = logging.getLogger(__name__)

CALLBACK_SETTINGS = ("wecom_token", "wecom_aes_key", "wecom_corp_id")
SEND_SETTINGS = ("wecom_corp_id", "wecom_agent_id", "wecom_secret")
MAX_PIECES = 6
"""At most this many 2048-byte messages per answer (≈ 4,000 Chinese characters)."""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """The fields of a decrypted app callback that matter here."""

    user_id: str
    msg_type: str
    content: str = ""
    msg_id: str = ""
    event: str = ""
    create_time: str = ""

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> InboundMessage:
        msg_type = fields.get("MsgType", "").lower()
        content = fields.get("Content", "")
        if msg_type == "voice" and fields.get("Recognition"):
            # With 语音识别 enabled WeCom sends the transcript; treat it as a typed question.
            msg_type, content = "text", fields["Recognition"]
        return cls(
            user_id=fields.get("FromUserName", ""),
            msg_type=msg_type,
            content=content,
            msg_id=fields.get("MsgId", ""),
            event=fields.get("Event", "").lower(),
            create_time=fields.get("CreateTime", ""),
        )

    @property
    def dedupe_key(self) -> str:
        # Events carry no MsgId; WeCom's docs say to deduplicate them by FromUserName + CreateTime.
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.user_id}:{self.create_time}:{self.event}"


class AppChannel:
    """Handles ``/wecom/app/callback`` for one self-built app."""

    def __init__(self, settings: Settings, dialog: Dialog, dispatcher: Dispatcher) -> None:
        self._settings = settings
        self._dialog = dialog
        self._dispatcher = dispatcher
        self._seen = ReplayCache(ttl_s=replay_ttl(settings.wecom_max_skew_s))
        self._sender: ReplySender | None = None
        self._client: WeComClient | None = None
        self._sender_lock = threading.Lock()

    # ---------------------------------------------------------------------------------- configuration

    def _require_callback_settings(self) -> None:
        missing = missing_settings(self._settings, CALLBACK_SETTINGS)
        if missing:
            raise CallbackRejected(
                404,
                f"WeCom app channel is not configured: set {', '.join(missing)} (see docs/wecom-setup.md)",
            )

    def _reply_sender(self) -> ReplySender:
        """The sender, built on first use; 503 when the settings needed to send are missing."""
        with self._sender_lock:
            if self._sender is not None:
                return self._sender
            missing = missing_settings(self._settings, SEND_SETTINGS)
            agent_id = str(self._settings.wecom_agent_id or "").strip()
            if not missing and not agent_id.isdigit():
                raise CallbackRejected(503, "DUTY_WECOM_AGENT_ID must be the app's numeric AgentId")
            if missing:
                raise CallbackRejected(
                    503, f"WeCom app channel cannot reply: set {', '.join(missing)} (see docs/wecom-setup.md)"
                )
            self._client = WeComClient(
                api_base=self._settings.wecom_api_base,
                corp_id=str(self._settings.wecom_corp_id),
                secret=str(self._settings.wecom_secret),
                agent_id=int(agent_id),
            )
            self._sender = ReplySender(self._client)
            return self._sender

    def _auth(
        self, msg_signature: str | None, timestamp: str | None, nonce: str | None, encrypted: str | None
    ) -> str:
        return authenticate(
            token=str(self._settings.wecom_token),
            aes_key=str(self._settings.wecom_aes_key),
            receive_id=str(self._settings.wecom_corp_id),
            max_skew_s=self._settings.wecom_max_skew_s,
            msg_signature=msg_signature,
            timestamp=timestamp,
            nonce=nonce,
            encrypted=encrypted,
            key_setting="DUTY_WECOM_AES_KEY",
        )

    # -------------------------------------------------------------------------------------- callbacks

    def verify_url(
        self, *, msg_signature: str | None, timestamp: str | None, nonce: str | None, echostr: str | None
    ) -> str:
        """GET URL verification: the decrypted echostr, to be returned verbatim."""
        self._require_callback_settings()
        return self._auth(msg_signature, timestamp, nonce, echostr)

    def receive(
        self, *, msg_signature: str | None, timestamp: str | None, nonce: str | None, body: bytes
    ) -> None:
        """POST: authenticate, deduplicate and queue the message. Returns quickly; the reply is sent later.

        Raises:
            CallbackRejected: Not configured, not authentic, stale, or malformed.
        """
        self._require_callback_settings()
        if len(body) > MAX_BODY_BYTES:
            raise CallbackRejected(413, "callback body too large")
        try:
            outer = crypto.parse_xml(body)
        except WeComCryptoError as exc:
            log.warning("wecom app callback with unusable XML: %s", exc)
            raise CallbackRejected(400, "callback body is not acceptable XML") from exc
        plaintext = self._auth(msg_signature, timestamp, nonce, outer.get("Encrypt"))
        sender = self._reply_sender()
        try:
            message = InboundMessage.from_fields(crypto.parse_xml(plaintext))
        except WeComCryptoError as exc:
            raise CallbackRejected(400, "decrypted message is not acceptable XML") from exc
        if not message.user_id:
            raise CallbackRejected(400, "message without FromUserName")
        if not self._seen.first_time(message.dedupe_key):
            log.info("wecom app: duplicate %s ignored", message.dedupe_key)
            return
        reply = self._immediate_reply(message)
        if reply is not None:
            if reply:
                self._dispatcher.submit(self._send, message.user_id, reply)
            return
        self._dispatcher.submit(self._answer, message.user_id, message.content, sender)

    def _immediate_reply(self, message: InboundMessage) -> str | None:
        """Reply text for events and non-text messages ("" = ignore); None for a question to answer."""
        if message.msg_type == "event":
            # subscribe: the member was given access to the app. enter_agent (opening the app) is ignored:
            # greeting on every visit would spam the conversation.
            return help_text() if message.event == "subscribe" else ""
        if message.msg_type != "text":
            return NON_TEXT_REPLY
        return None

    # ------------------------------------------------------------------------------------ worker side

    def _answer(self, user_id: str, question: str, sender: ReplySender) -> None:
        reply = self._dialog.answer(user_id, question)
        sender.send(user_id, reply.pieces(limit=APP_TEXT_LIMIT, max_pieces=MAX_PIECES))

    def _send(self, user_id: str, text: str) -> None:
        self._reply_sender().send(user_id, Reply(text).pieces(limit=APP_TEXT_LIMIT, max_pieces=MAX_PIECES))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
