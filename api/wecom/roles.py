"""Which role (教师/班主任/校长…) a WeCom user asks as: their own choice, else the administrator's mapping file.

Users choose with a chat command such as 「设置角色 班主任」; administrators may pre-assign roles in a YAML or
JSON file (``DUTY_WECOM_ROLES_FILE``) mapping WeCom UserIDs to role names::

    zhangsan: 班主任
    lisi: 校长
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from api.wecom.store import WeComStore
from assistant.errors import AssistantError, ConfigError

__all__ = ["Command", "RoleBook", "load_role_mapping", "parse_command", "role_names"]

log = logging.getLogger(__name__)

_SET_ROLE = re.compile(
    r"^(?:设置|设定|切换|修改|更改)角色(?:为|成|是)?\s*[:：]?\s*(?P<role>.*)$|^我是(?P<role2>\S{1,8})$"
)
_SHOW_ROLE = re.compile(r"^(?:我的角色|查看角色|当前角色|角色)[?？]?$")
_CLEAR_ROLE = re.compile(r"^(?:清除|取消|重置|删除)角色$")
_HELP = re.compile(r"^(?:帮助|help|使用说明|说明|菜单|[?？])$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Command:
    name: Literal["set_role", "show_role", "clear_role", "help"]
    arg: str = ""


def parse_command(text: str) -> Command | None:
    """Recognise a chat command; None means the text is a question."""
    text = text.strip()
    if match := _SET_ROLE.match(text):
        role = (match.group("role") or match.group("role2") or "").strip(" 。.!！「」\"'")
        if match.group("role2") and not _is_role(role):
            return None  # 「我是新来的」 is a question, not a command
        return Command("set_role", role)
    if _SHOW_ROLE.match(text):
        return Command("show_role")
    if _CLEAR_ROLE.match(text):
        return Command("clear_role")
    if _HELP.match(text):
        return Command("help")
    return None


def role_names() -> tuple[str, ...]:
    """The role names users may choose."""
    from assistant.retrieve import ROLE_TERMS

    return tuple(ROLE_TERMS)


def canonical(role: str) -> str:
    """The canonical role name (aliases such as 老师 → 教师).

    Raises:
        ValueError: Not a known role; the message lists the choices.
    """
    from assistant.retrieve import canonical_role

    try:
        result = canonical_role(role)
    except AssistantError as exc:
        raise ValueError(f"未知角色「{role}」；可选：{'、'.join(role_names())}") from exc
    if result is None:
        raise ValueError(f"请写出角色名称；可选：{'、'.join(role_names())}")
    return result


def _is_role(text: str) -> bool:
    try:
        canonical(text)
    except ValueError:
        return False
    return True


def load_role_mapping(path: Path) -> dict[str, str]:
    """Read a UserID → role mapping file (YAML or JSON); entries with unknown roles are skipped with a warning.

    Raises:
        ConfigError: The file cannot be read or is not a mapping.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the WeCom roles file {path}: {exc}; fix DUTY_WECOM_ROLES_FILE"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the WeCom roles file {path} must map UserIDs to roles (e.g. `zhangsan: 班主任`)")
    mapping: dict[str, str] = {}
    for user, role in data.items():
        try:
            mapping[str(user)] = canonical(str(role))
        except ValueError:
            log.warning("roles file %s: unknown role %r for a user; entry skipped", path, role)
    return mapping


class RoleBook:
    """Resolves and records users' roles. A role the user chose overrides the mapping file."""

    def __init__(self, store: WeComStore, mapping_file: Path | None = None) -> None:
        self._store = store
        self._mapping_file = Path(mapping_file) if mapping_file else None
        self._mapping: dict[str, str] = {}
        self._mapping_mtime: float | None = None
        self._lock = threading.Lock()

    def role_for(self, user_id: str) -> str | None:
        """The role to answer ``user_id`` as, or None when unknown."""
        return self._store.get_role(user_id) or self._mapped(user_id)

    def set_role(self, user_id: str, role: str) -> str:
        """Store the user's choice and return the canonical role name.

        Raises:
            ValueError: Unknown role; the message (Chinese) lists the choices.
        """
        name = canonical(role)
        self._store.set_role(user_id, name)
        return name

    def clear_role(self, user_id: str) -> str | None:
        """Forget the user's choice; returns the role that now applies (from the mapping file), if any."""
        self._store.clear_role(user_id)
        return self._mapped(user_id)

    def _mapped(self, user_id: str) -> str | None:
        if self._mapping_file is None:
            return None
        with self._lock:
            try:
                mtime = self._mapping_file.stat().st_mtime
            except OSError:
                log.warning(
                    "WeCom roles file %s not found; DUTY_WECOM_ROLES_FILE ignored", self._mapping_file
                )
                return None
            if mtime != self._mapping_mtime:  # re-read after the administrator edits the file
                self._mapping_mtime = mtime
                try:
                    self._mapping = load_role_mapping(self._mapping_file)
                except ConfigError as exc:
                    log.error("%s", exc)
                    self._mapping = {}
            return self._mapping.get(user_id)
