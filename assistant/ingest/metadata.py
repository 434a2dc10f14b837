"""Document metadata: from a ``<file>.meta.yaml`` sidecar when present, otherwise inferred from name and text."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from assistant.errors import CorpusError
from assistant.types import DOC_KINDS, DocMeta

_DATE_IN_NAME = re.compile(r"[（(](\d{4}-\d{2}-\d{2})[）)]")
_PROVINCES = "北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|内蒙古|广西|西藏|宁夏|新疆"
_LOCAL = re.compile(rf"^(?:{_PROVINCES})|^\S{{2,6}}[省市州县区]")
_DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,8}〔\d{4}〕\d+号")


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.yaml")


def document_meta(path: Path, text: str, parsed_title: str = "") -> DocMeta:
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        return _read_sidecar(sidecar)
    return infer_meta(path.name, text, parsed_title)


def _read_sidecar(sidecar: Path) -> DocMeta:
    try:
        data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusError(f"{sidecar.name}: cannot read metadata ({exc}); fix the YAML or delete the file") from exc
    if not isinstance(data, dict) or not data.get("title"):
        raise CorpusError(f"{sidecar.name}: metadata needs at least a 'title' field")
    kind = str(data.get("kind", "other"))
    if kind not in DOC_KINDS:
        raise CorpusError(f"{sidecar.name}: kind {kind!r} is not one of {', '.join(DOC_KINDS)}")
    fields = {k: str(data.get(k, "") or "") for k in ("issuer", "doc_number", "date", "version")}
    return DocMeta(title=str(data["title"]), kind=kind, **fields)


def infer_meta(name: str, text: str, parsed_title: str = "") -> DocMeta:
    stem = Path(name).stem
    date_match = _DATE_IN_NAME.search(stem)
    date = date_match.group(1) if date_match else ""
    short = _DATE_IN_NAME.sub("", stem).strip()
    # A file name in words (安全生产法(2021-06-10).md) names the document; an opaque one (000_ef7a….txt) does not.
    named = bool(re.search(r"[\u4e00-\u9fff]", short))
    title = parsed_title or short
    if named and short not in title:
        title = short
    kind = infer_kind(title)
    number = _DOC_NUMBER.search(text[:600])
    return DocMeta(title=title, kind=kind, doc_number=number.group(0) if number else "", date=date, version=date)


def infer_kind(title: str) -> str:
    plain = title.removeprefix("中华人民共和国")
    if re.search(r"述职报告|范文|汇报", plain):
        return "sample_report"
    if re.search(r"通知|意见|办法|方案|细则|机制|制度", plain) and not plain.endswith("条例"):
        return "bureau_document"
    if plain.endswith("法"):
        return "law"
    if re.search(r"条例|规定", plain):
        return "local_regulation" if _LOCAL.search(plain) else "regulation"
    return "other"


def title_key(title: str) -> str:
    """Titles that name the same instrument in different versions share this key."""
    key = title.removeprefix("中华人民共和国")
    key = _DATE_IN_NAME.sub("", key)
    return re.sub(r"[\s（）()]|\d{4}年?(?:修订|修正)?", "", key)
