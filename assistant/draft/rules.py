"""The drafter's data rules (assistant/data/draft_rules.yaml): section aliases, fact markers, search topics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from assistant.draft.model import SECTION_KEYS, DraftInputError
from assistant.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Rules:
    section_aliases: dict[str, tuple[str, ...]]
    fact_labels: dict[str, tuple[str, ...]]
    fact_markers: dict[str, re.Pattern[str]]
    weak_markers: dict[str, frozenset[str]]
    done_markers: re.Pattern[str]
    section_topics: dict[str, str]
    section_quota: dict[str, int]
    duty_words: re.Pattern[str]
    government_subject: re.Pattern[str]
    safety_words: re.Pattern[str]
    school_words: re.Pattern[str]
    school_titles: re.Pattern[str]
    penalty_words: re.Pattern[str]
    penalty_sections: re.Pattern[str]
    not_duty: re.Pattern[str]
    doc_number: re.Pattern[str]
    role_titles: dict[str, str]
    role_subjects: dict[str, tuple[str, ...]]
    chat_request: re.Pattern[str]


@lru_cache(maxsize=1)
def load_rules() -> Rules:
    """Parse draft_rules.yaml once; a malformed file is a ConfigError naming the key."""
    raw = resources.files("assistant").joinpath("data", "draft_rules.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(raw)
    try:
        per_section = {k: {key: data[k][key] for key in SECTION_KEYS} for k in ("section_aliases", "fact_labels", "section_topics", "section_quota")}
        return Rules(
            section_aliases={k: tuple(str(a) for a in v) for k, v in per_section["section_aliases"].items()},
            fact_labels={k: tuple(str(a) for a in v) for k, v in per_section["fact_labels"].items()},
            fact_markers={k: re.compile(v) for k, v in data["fact_markers"].items()},
            weak_markers={k: frozenset(v) for k, v in data["weak_markers"].items()},
            done_markers=re.compile(data["done_markers"]),
            section_topics={k: str(v) for k, v in per_section["section_topics"].items()},
            section_quota={k: int(v) for k, v in per_section["section_quota"].items()},
            duty_words=re.compile(data["duty_words"]),
            government_subject=re.compile(data["government_subject"]),
            safety_words=re.compile(data["safety_words"]),
            school_words=re.compile(data["school_words"]),
            school_titles=re.compile(data["school_titles"]),
            penalty_words=re.compile(data["penalty_words"]),
            penalty_sections=re.compile(data["penalty_sections"]),
            not_duty=re.compile(data["not_duty"]),
            doc_number=re.compile(data["doc_number"]),
            role_titles={str(k): str(v) for k, v in (data.get("role_titles") or {}).items()},
            role_subjects={str(k): tuple(str(x) for x in v) for k, v in data["role_subjects"].items()},
            chat_request=re.compile(data["chat_request"]),
        )
    except (KeyError, TypeError, re.error) as exc:
        raise ConfigError(f"assistant/data/draft_rules.yaml is malformed ({exc!r}); reinstall the package") from exc


def parse_section(name: str | None) -> str | None:
    """Section key for 「履职情况」「问题」「3」「四、下一步工作打算」…; None for empty input or 「全部」.

    Raises:
        DraftInputError: the name matches no section.
    """
    if name is None:
        return None
    text = re.sub(r"\s+", "", name)
    if not text or text.lower() in {"all", "全部", "全文", "整篇"}:
        return None
    if text in SECTION_KEYS:
        return text
    best: tuple[int, str] | None = None
    for key, aliases in load_rules().section_aliases.items():
        for alias in aliases:
            if text == alias or (len(alias) > 1 and alias in text):
                if best is None or len(alias) > best[0]:
                    best = (len(alias), key)
    if best is None:
        raise DraftInputError(f"unknown section {name!r}; use 1-4 or 履职情况 / 工作成效 / 问题 / 打算")
    return best[1]
