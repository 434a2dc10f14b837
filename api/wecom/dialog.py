"""What the assistant says to a WeCom user: chat commands (roles, help) and cited answers, shared by both
channels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from api.wecom.render import Reply, reply_for
from api.wecom.roles import RoleBook, parse_command, role_names
from assistant.draft.chat import draft_from_chat
from assistant.errors import AssistantError
from assistant.prompts import render

if TYPE_CHECKING:
    from assistant.pipeline import Assistant

__all__ = ["NON_TEXT_REPLY", "Dialog", "help_text"]

log = logging.getLogger(__name__)

NON_TEXT_REPLY = (
    "目前只能回答文字提问。请直接输入问题，例如：「学生在校受伤，班主任要做什么？」发送「帮助」查看用法。"
)
ERROR_REPLY = "抱歉，系统暂时出错，没能回答这个问题。请稍后再试；若多次出现，请联系管理员。"
PENDING_TEXT = "正在检索政策原文……"


def help_text() -> str:
    roles = "、".join(role_names())
    return (
        "您好！我是学校安全「党政同责、一岗双责」政策助手，回答均摘自政策原文并注明出处。\n"
        "直接输入问题即可，例如：\n"
        "· 班主任的安全职责有哪些？\n"
        "· 学生在校受伤，学校要承担什么责任？\n"
        "设置身份：发送「设置角色 班主任」，回答会按您的岗位组织\n"
        f"可选角色：{roles}\n"
        "查看身份：发送「我的角色」；清除：发送「清除角色」\n"
        "起草述职报告：发送「帮我写述职报告的履职情况部分，单位：某某学校。我们今年……」，后面写上您的工作事实"
    )


class Dialog:
    """Turns one user message into reply text. Blocking; call it from a worker thread."""

    def __init__(
        self, get_assistant: Callable[[], Assistant], roles: RoleBook, *, max_question_chars: int = 2000
    ) -> None:
        self._get_assistant = get_assistant
        self.roles = roles
        self._max_chars = max_question_chars

    def command_reply(self, user_id: str, text: str) -> str | None:
        """The reply to a chat command, or None when ``text`` is a question."""
        if not text.strip():
            return help_text()
        command = parse_command(text)
        if command is None:
            return None
        if command.name == "help":
            return help_text()
        if command.name == "show_role":
            role = self.roles.role_for(user_id)
            if role:
                return f"您当前的角色是「{role}」。回答会按这一岗位组织；发送「设置角色 校长」等可以更改。"
            return f"您还没有设置角色。发送「设置角色 班主任」等即可设置；可选：{'、'.join(role_names())}。"
        if command.name == "clear_role":
            fallback = self.roles.clear_role(user_id)
            extra = f"，现按管理员配置的「{fallback}」回答" if fallback else ""
            return f"已清除您设置的角色{extra}。"
        try:
            role = self.roles.set_role(user_id, command.arg)
        except ValueError as exc:
            return str(exc)
        log.info("wecom user set role %s", role)
        return f"已将您的角色设置为「{role}」，之后的回答会按{role}的职责来组织。"

    def _draft(self, message: str, role: str | None) -> Reply | None:
        """A 述职报告 draft when the message asks for one (「帮我写述职报告……」), else None. The draft's own
        appendix quotes every cited article, so no source lines are added; the Word file is made on the web page
        or by `duty draft` (a WeCom user cannot download from a server on the school's network)."""
        made = draft_from_chat(self._get_assistant(), message.strip(), role=role)
        if made is None:
            return None
        return Reply(made.answer(render("draft_chat", "wecom_word_line")).answer.strip())

    def answer(self, user_id: str, question: str) -> Reply:
        """The reply to a question or command (never raises)."""
        reply = self.command_reply(user_id, question)
        if reply is not None:
            return Reply(reply)
        try:
            role = self.roles.role_for(user_id)
            drafted = self._draft(question, role)
            if drafted is not None:
                return drafted
            answer = self._get_assistant().ask(question.strip()[: self._max_chars], role=role)
        except AssistantError as exc:
            log.warning("wecom question could not be answered: %s", exc)
            return Reply(f"抱歉，这个问题暂时无法回答：{exc}")
        except Exception:
            log.exception("wecom answer failed")
            return Reply(ERROR_REPLY)
        return reply_for(answer)

    def answer_snapshots(self, user_id: str, question: str) -> Iterator[tuple[Reply, bool]]:
        """Cumulative reply snapshots as the answer is produced; the last one has ``done=True``.

        The final snapshot carries the compact citation lines; errors become a polite final snapshot.
        """
        question = question.strip()[: self._max_chars]
        partial = ""
        try:
            role = self.roles.role_for(user_id)
            drafted = self._draft(question, role)
            if drafted is not None:
                yield drafted, True
                return
            for kind, value in self._get_assistant().ask_stream(question, role=role):
                if kind == "delta":
                    partial += str(value)
                    yield Reply(partial), False
                else:
                    yield reply_for(value), True  # type: ignore[arg-type]
                    return
        except AssistantError as exc:
            log.warning("wecom question could not be answered: %s", exc)
            yield Reply(f"抱歉，这个问题暂时无法回答：{exc}"), True
            return
        except Exception:
            log.exception("wecom answer failed")
            yield Reply(ERROR_REPLY), True
            return
        yield Reply(partial or ERROR_REPLY), True  # the stream ended without a final event
