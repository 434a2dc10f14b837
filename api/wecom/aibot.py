"""智能机器人 (AI bot) API-mode channel: encrypted JSON callbacks answered with ``stream`` replies.

The first reply to a question opens a stream with a placeholder; WeCom then polls with ``stream`` refresh
callbacks, each answered at once with the latest full snapshot (content is cumulative, not a delta) until a
reply carries ``finish: true``. WeCom stops polling 6 minutes after the user's message, so a stream still
running after ``deadline_s`` is finished with what it has. Works in 1:1 and group chats (the @mention is
stripped). ReceiveId is ``""``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.wecom.common import MAX_BODY_BYTES, CallbackRejected, Dispatcher, authenticate, missing_settings
from api.wecom.crypto import build_json_reply
from api.wecom.dedupe import ReplayCache, replay_ttl
from api.wecom.dialog import NON_TEXT_REPLY, PENDING_TEXT, Dialog, help_text
from api.wecom.render import Reply
from api.wecom.splitter import BOT_STREAM_LIMIT
from api.wecom.store import WeComStore
from assistant.config import Settings

__all__ = ["BOT_SETTINGS", "AiBotChannel", "StreamBook", "message_text", "strip_mentions"]

log = logging.getLogger(__name__)

BOT_SETTINGS = ("wecom_bot_token", "wecom_bot_aes_key")
TIMEOUT_NOTE = "\n\n（检索超时，回答可能不完整，请稍后重试或换个问法。）"
EXPIRED_TEXT = "这条回答已过期，请重新提问。"

# WeCom puts a U+2005 (four-per-em space) after an @mention; users type ordinary spaces too.
_LEADING_MENTIONS = re.compile(r"^(?:\s*@[^\s\u2005]+[\s\u2005]+)+")
_TRAILING_MENTION = re.compile(r"[\s\u2005]+@[^\s\u2005]+\s*$")
_ONLY_MENTION = re.compile(r"@[^\s\u2005]+")


def strip_mentions(text: str) -> str:
    """Remove @mentions at the start (and a trailing one) of a group-chat message."""
    text = _TRAILING_MENTION.sub("", _LEADING_MENTIONS.sub("", text)).strip()
    return "" if _ONLY_MENTION.fullmatch(text) else text


def message_text(msg: dict[str, Any]) -> str | None:
    """The user's text in a text / mixed / voice message; None for other message types."""
    msgtype = msg.get("msgtype")
    if msgtype == "text":
        return str((msg.get("text") or {}).get("content", ""))
    if msgtype == "voice":  # WeCom delivers the speech-recognition transcript
        return str((msg.get("voice") or {}).get("content", ""))
    if msgtype == "mixed":
        items = (msg.get("mixed") or {}).get("msg_item") or []
        texts = [
            str((item.get("text") or {}).get("content", ""))
            for item in items
            if item.get("msgtype") == "text"
        ]
        return "\n".join(t for t in texts if t) if texts else None
    return None


@dataclass(slots=True)
class _Stream:
    stream_id: str
    user_id: str
    question: str
    created: float
    content: str
    finished: bool


class StreamBook:
    """Latest snapshot of each open stream, by stream id and by the message id that opened it."""

    def __init__(
        self, *, deadline_s: float = 300.0, ttl_s: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._deadline = deadline_s
        self._ttl = ttl_s
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        self._by_msgid: dict[str, str] = {}
        self._lock = threading.Lock()

    def open(self, msgid: str, user_id: str, question: str, content: str, *, finished: bool = False) -> str:
        """Start a stream and return its id."""
        stream_id = "duty-" + secrets.token_hex(8)
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._streams[stream_id] = _Stream(stream_id, user_id, question, now, content, finished)
            if msgid:
                self._by_msgid[msgid] = stream_id
        return stream_id

    def update(self, stream_id: str, content: str, *, finished: bool) -> None:
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is not None and not stream.finished:
                stream.content, stream.finished = content, finished

    def stream_for_message(self, msgid: str) -> str | None:
        with self._lock:
            return self._by_msgid.get(msgid)

    def question(self, stream_id: str) -> str:
        with self._lock:
            stream = self._streams.get(stream_id)
            return stream.question if stream else ""

    def snapshot(self, stream_id: str) -> tuple[str, bool] | None:
        """``(content, finished)`` to send now; past the deadline an unfinished stream is finished as is."""
        now = self._clock()
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None:
                return None
            if not stream.finished and now - stream.created > self._deadline:
                log.warning("wecom aibot stream %s passed its deadline; finishing it", stream_id)
                stream.content = (stream.content if stream.content != PENDING_TEXT else "") + TIMEOUT_NOTE
                stream.finished = True
            return stream.content, stream.finished

    def _expire(self, now: float) -> None:
        old = [sid for sid, s in self._streams.items() if now - s.created > self._ttl]
        for sid in old:
            del self._streams[sid]
        if old:
            gone = set(old)
            self._by_msgid = {m: s for m, s in self._by_msgid.items() if s not in gone}


def _fit(reply: Reply) -> str:
    """The reply as one stream content of at most 20480 bytes (shortened at a line end if need be)."""
    # Keep room for the timeout note a late refresh may append.
    return reply.pieces(limit=BOT_STREAM_LIMIT - 256, max_pieces=1)[0]


class AiBotChannel:
    """Handles ``/wecom/aibot/callback`` for one AI bot."""

    def __init__(
        self,
        settings: Settings,
        dialog: Dialog,
        dispatcher: Dispatcher,
        store: WeComStore,
        *,
        streams: StreamBook | None = None,
    ) -> None:
        self._settings = settings
        self._dialog = dialog
        self._dispatcher = dispatcher
        self._store = store
        self.streams = streams or StreamBook()
        self._seen = ReplayCache(ttl_s=replay_ttl(settings.wecom_max_skew_s))

    def _require_settings(self) -> None:
        missing = missing_settings(self._settings, BOT_SETTINGS)
        if missing:
            raise CallbackRejected(
                404,
                f"WeCom AI-bot channel is not configured: set {', '.join(missing)} (see docs/wecom-setup.md)",
            )

    def _auth(
        self, msg_signature: str | None, timestamp: str | None, nonce: str | None, encrypted: str | None
    ) -> str:
        return authenticate(
            token=str(self._settings.wecom_bot_token),
            aes_key=str(self._settings.wecom_bot_aes_key),
            receive_id="",
            max_skew_s=self._settings.wecom_max_skew_s,
            msg_signature=msg_signature,
            timestamp=timestamp,
            nonce=nonce,
            encrypted=encrypted,
            key_setting="DUTY_WECOM_BOT_AES_KEY",
        )

    def verify_url(
        self, *, msg_signature: str | None, timestamp: str | None, nonce: str | None, echostr: str | None
    ) -> str:
        """GET URL verification: the decrypted echostr, to be returned verbatim."""
        self._require_settings()
        return self._auth(msg_signature, timestamp, nonce, echostr)

    def receive(
        self, *, msg_signature: str | None, timestamp: str | None, nonce: str | None, body: bytes
    ) -> dict[str, str | int] | None:
        """POST: the encrypted JSON reply envelope, or None for an empty 200.

        Raises:
            CallbackRejected: Not configured, not authentic, stale, or malformed.
        """
        self._require_settings()
        if len(body) > MAX_BODY_BYTES:
            raise CallbackRejected(413, "callback body too large")
        try:
            envelope = json.loads(body)
            encrypted = envelope.get("encrypt") if isinstance(envelope, dict) else None
        except ValueError as exc:
            raise CallbackRejected(400, "callback body is not JSON") from exc
        plaintext = self._auth(msg_signature, timestamp, nonce, encrypted)
        try:
            msg = json.loads(plaintext)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise CallbackRejected(400, "decrypted message is not a JSON object") from exc
        payload = self._handle(msg)
        if payload is None:
            return None
        return build_json_reply(
            str(self._settings.wecom_bot_token),
            str(self._settings.wecom_bot_aes_key),
            json.dumps(payload, ensure_ascii=False),
            receive_id="",
            timestamp=str(int(time.time())),
            nonce=str(nonce),  # the reply must carry the callback URL's nonce
        )

    # --------------------------------------------------------------------------------------- dispatch

    def _handle(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        msgtype = msg.get("msgtype")
        msgid = str(msg.get("msgid", ""))
        user_id = str((msg.get("from") or {}).get("userid", ""))
        if msgtype == "stream":
            return self._refresh(str((msg.get("stream") or {}).get("id", "")))
        if msgtype == "event":
            return self._event(msg, msgid, user_id)
        if msgid and not self._seen.first_time(msgid):
            # A retry of a message we already took: show the stream it opened.
            stream_id = self.streams.stream_for_message(msgid)
            log.info("wecom aibot: duplicate msgid, %s", "resending stream" if stream_id else "ignored")
            return self._refresh(stream_id) if stream_id else None
        text = message_text(msg)
        if text is None:
            stream_id = self.streams.open(msgid, user_id, "", NON_TEXT_REPLY, finished=True)
            return self._stream_payload(stream_id, NON_TEXT_REPLY, True, first=True)
        question = strip_mentions(text)
        command = self._dialog.command_reply(user_id, question)
        if command is not None:
            stream_id = self.streams.open(msgid, user_id, question, command, finished=True)
            return self._stream_payload(stream_id, command, True, first=True)
        stream_id = self.streams.open(msgid, user_id, question, PENDING_TEXT)
        if not self._dispatcher.submit(self._answer, stream_id, user_id, question):
            self.streams.update(stream_id, "系统繁忙，请稍后再问。", finished=True)
        content, finished = self.streams.snapshot(stream_id) or (PENDING_TEXT, False)
        return self._stream_payload(stream_id, content, finished, first=True)

    def _refresh(self, stream_id: str) -> dict[str, Any]:
        snap = self.streams.snapshot(stream_id)
        if snap is None:
            return self._stream_payload(stream_id or "expired", EXPIRED_TEXT, True)
        return self._stream_payload(stream_id, *snap)

    def _event(self, msg: dict[str, Any], msgid: str, user_id: str) -> dict[str, Any] | None:
        event = msg.get("event") or {}
        eventtype = event.get("eventtype")
        if msgid and not self._seen.first_time(msgid):
            return None
        if eventtype == "enter_chat":
            return {"msgtype": "text", "text": {"content": help_text()}}
        if eventtype == "feedback_event":
            fb = event.get("feedback_event") or {}
            feedback_id = str(fb.get("id", ""))
            try:
                self._store.add_feedback(
                    feedback_id=feedback_id,
                    user_id=user_id,
                    kind=int(fb.get("type", 0)),
                    content=str(fb.get("content", "")),
                    reasons=",".join(str(r) for r in fb.get("inaccurate_reason_list") or []),
                    question=self.streams.question(feedback_id),
                )
            except Exception:
                log.exception("wecom aibot feedback could not be stored")
            return None  # feedback events must be answered with an empty body
        log.info("wecom aibot event %s ignored", eventtype)
        return None

    def _stream_payload(
        self, stream_id: str, content: str, finished: bool, *, first: bool = False
    ) -> dict[str, Any]:
        stream: dict[str, Any] = {"id": stream_id, "finish": finished, "content": content}
        if first:
            stream["feedback"] = {"id": stream_id}  # enables 👍/👎; the event carries this id back
        return {"msgtype": "stream", "stream": stream}

    # ------------------------------------------------------------------------------------ worker side

    def _answer(self, stream_id: str, user_id: str, question: str) -> None:
        for snapshot, done in self._dialog.answer_snapshots(user_id, question):
            self.streams.update(stream_id, _fit(snapshot), finished=done)
