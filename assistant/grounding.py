"""Evidence checks behind the grounded decision: does the retrieved text speak to what was asked?

Two failure modes dominate unanswerable questions (measured on eval/dev.jsonl): the question is about
something the texts never discuss (高考加分、学区划片), or it asks for a specific the texts do not give:
a number (「留样要留多少克」 when the law only says 留样) or a form or web resource (「打分表模板在哪下载」).
Similarity scores barely separate either from answerable paraphrases; these checks do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from assistant.bm25 import BM25Index, idf_of
from assistant.text import get_pos_tagger, sentence_spans, stopwords, thesaurus

_DIGITS = "0-9０-９零一二两三四五六七八九十百千万半"
# A stated number; 「第二十一条」 and the tail of a longer number are not numbers of their own.
_NUM = rf"(?<![第{_DIGITS}])(?:[0-9０-９]+(?:\.[0-9]+)?[十百千万亿]?|[零一二两三四五六七八九十百千万亿半]+)"
_TIME = r"日|天|小时|个?月|年|周|星期|分钟|学期|学年|季度|工作日"
_LENGTH = r"米|厘米|毫米|公里|千米"
_COUNT = r"个|名|人|位|所|辆|台|件|只|项|本|册|张|套|次|具|间|班"
_RATIO = r"%|％|百分之|分之|成|比"
_ANY_UNIT = "|".join((_TIME, _LENGTH, _COUNT, _RATIO, r"元|分|克|公斤|千克|斤|吨|岁|级|倍|节|篇"))
# 「每季度召开一次」 answers 「多长时间开一次」 without a number in front of the unit.
_FREQUENCY = r"每(?:个|半)?(?:季度|学期|学年|年|月|周|星期|天|日)"
# The unit words a question can ask in (「几天」「多少钱」), each with the units a stated answer may carry.
_UNITS = {
    "天": r"工作日|日|天", "日": r"工作日|日|天", "钱": r"元", "块": r"元", "元": r"元", "万": r"万元?",
    "小时": r"小时", "个小时": r"小时", "钟头": r"小时", "个钟头": r"小时", "分钟": r"分钟",
    "月": r"个?月", "个月": r"个?月", "年": r"年", "周": r"周|星期", "星期": r"周|星期",
    "学期": r"学期", "岁": r"周?岁", "周岁": r"周?岁",
    "次": r"次|回|遍|趟", "回": r"次|回|遍|趟", "遍": r"次|回|遍|趟", "趟": r"次|回|遍|趟",
    "人": r"名|人", "个人": r"名|人", "名": r"名|人", "位": r"名|人|位",
    "分": r"分", "克": r"克", "公斤": r"公斤|千克", "斤": r"斤|公斤|千克", "吨": r"吨",
    "米": _LENGTH, "公里": r"公里|千米", "度": r"度|℃", "节": r"节", "篇": r"篇", "级": r"级", "届": r"届",
    "号": r"日|号", "点": r"时|点", "轮": r"次|回|遍|趟|轮",
    # money asked for by what it pays (「罚多少罚款」「赔偿多少」 read as 多少罚款): an amount in 元
    "罚款": r"元", "罚金": r"元", "费用": r"元", "赔偿": r"元", "补偿": r"元", "工资": r"元", "奖金": r"元",
}
_UNITS_LONGEST_FIRST = sorted(_UNITS, key=len, reverse=True)
# Questions that ask for a measure without a unit word of their own, and the units that answer them.
_MEASURES = (
    (re.compile(r"多长时间|多久|多长(?=时间|期限)"), _TIME, True),
    (re.compile(r"多(?:高|矮|深|宽|厚|远)"), _LENGTH, False),
    (re.compile(r"多长"), _TIME + "|" + _LENGTH, True),
    (re.compile(r"多大(?:年纪|岁数)"), r"周?岁", False),
    (re.compile(r"多重"), r"公斤|千克|克|斤|吨", False),
    # 「按什么比例配」 asks for a ratio although 什么 usually marks a question about something else.
    (re.compile(r"什么比例|百分之(?:几|多少)|比例|几成|占(?![用据]).{0,8}多少"), _RATIO, False),
    (re.compile(r"几点"), r"时|点", False),
    (re.compile(r"几号|几月几[日号]|哪一?天(?![内里])"), r"月|日|号", False),
)
# 多少/几 as a question word; 好几、哪几、这几、十几、第几… are not, nor 几十、几百、几千 (「几千人的招聘会」).
_COUNT_QUESTION = re.compile(r"(?<![好哪这那前近十第])(?:多少|几(?![乎十百千万]))(个|名|位)?([\u4e00-\u9fff]{0,2})")
# Any of these in the same sentence makes 几 mean "a few" (「能不能骂他几句」「多拉几个行不行」).
_OTHER_QUESTION = re.compile(r"能不能|行不行|可不可以|要不要|会不会|有没有|是不是|是否|怎么|如何|什么|吗|么")
# The period a rate is counted over (「一个学期最多几次」); it frames the count rather than naming its subject.
_RATE_PERIOD = re.compile(r"(?:每|一)个?(?:学期|学年|季度|年|月|周|星期|天|日)")
# An upper or lower limit asked for, and how a text marks a stated number as one.
_ASKS_MAX = re.compile(r"最多|最长|最高|最大|至多|上限|最晚|不能超过|不得超过")
_ASKS_MIN = re.compile(r"最少|至少|起码|最低|下限|最短|不(?:能|得)?少于|不(?:能|得)?低于")
# 「一年内发生……事故」: the span over which events are counted, not a time limit or a duration.
_COUNTING_PERIOD = re.compile(r"(?:内|以内|之内)(?:发生|有|出现|累计|连续)")
# Comparison words around a number; in a question they say which limit is asked, not what is counted.
_LIMIT_WORDS = re.compile(r"(?:不能|不得|不)?(?:少于|多于|超过|低于|高于)|以上|以下|以内")
# (words just before the number, words just after it) that mark it as a lower or an upper limit
_STATED_LIMIT = {
    "min": (re.compile(r"(?:不少于|不低于|不得少于|不得低于|至少|起码|最低)$"), re.compile(r"^以上")),
    "max": (re.compile(r"(?:不超过|不得超过|不高于|不得高于|至多|最多|最高|最长)$"), re.compile(r"^(?:以内|以下|之内|内)")),
}
_TOPIC_POS = ("n", "vn", "v", "a", "j", "l")
# Abbreviations (j: 中小学生、家长会) and set phrases (l: 义务教育) name things as nouns do. On two
# characters these tags mostly mark adverbs (一共、一律), so only longer ones count.
_NOUN_POS = ("n", "vn", "j", "l")
# Words that ask for a number or a limit (多长时间、起码、最多) say what is asked, not what it is about.
_ASKING_WORD = re.compile(r"(?:多长时间|多久|多长|多少|几\w?|最多|最长|最高|最大|至多|最少|至少|起码|最低|最短)")
# jieba glues a modal to a one-character verb (要读、能收、该交); what is left is too short to name a subject.
_MODAL_PLUS_CHAR = re.compile(r"[要能会该可想得]\w")
# Share of a quantity question's subject (idf-weighted) that the sentence stating the number must name.
_QUANTITY_TOPIC_SHARE = 0.5
# Words that frame a question about rules in general; every policy text contains them, so they say
# nothing about whether the texts cover the question's subject.
_FRAME_WORDS = frozenset("政策 规定 法律 法规 文件 要求 标准 情况 问题 方面 内容 条款 依据 说法 意思 东西 事情 怎么样 具体".split())
# Modal and auxiliary verbs left over when jieba splits 「能不能」「会不会」: they frame the question too.
_MODAL_WORDS = frozenset("不能 能否 能够 可否 不会 不用 不必 才能".split())
# A sanctions chapter, and the share of a money question's subject a fine stated there must repeat (see _states).
_PENALTY_HEADING = re.compile(r"法律责任|罚则|处罚")
_PENALTY_SHARE = 0.5
# Things people ask the assistant to hand over that legal texts almost never contain: (kind, how a question
# asks for one, how a passage would name one). A question after one is answered only when a top passage
# names the same kind of thing; a particular school or business is never named by a policy text.
_RESOURCES = (
    ("form", r"表格|模板|样表|范本|范例|样本|[申登评打统报]\w?表(?!现|彰|扬|达|示|决)", None),
    ("online", r"下载|网址|网站|网页|链接|二维码|公众号|小程序|[Aa][Pp][Pp]", None),
    ("contact", r"热线|联系电话|电话号码|邮箱|联系方式", None),
    ("particular institution", r"哪所|哪家", r"(?!)"),
)


@dataclass(frozen=True, slots=True)
class AskedQuantity:
    """A number the question asks for: the asking words, the units an answer carries, the limit asked."""

    phrase: str
    units: str  # regex alternatives; a stated number must be followed by one of them
    frequency: bool = False  # a rate such as 「每学期」 also answers it
    limit: str = ""  # "max" for 最多/最长…, "min" for 最少/至少…, "" when no limit is asked


def asked_quantities(question: str) -> list[AskedQuantity]:
    """The numbers a question asks for, at most one per sentence of the question."""
    found = []
    for sentence in _question_sentences(question):
        asked = _asked_in(sentence)
        if asked is None:
            continue
        word = re.search(r"多少|几|多.", asked.phrase)
        if _OTHER_QUESTION.search(sentence.replace(word.group(0) if word else asked.phrase, "", 1)):
            continue
        limit = "max" if _ASKS_MAX.search(sentence) else "min" if _ASKS_MIN.search(sentence) else ""
        found.append(AskedQuantity(asked.phrase, asked.units, asked.frequency, limit))
    return found


def _asked_in(sentence: str) -> AskedQuantity | None:
    for pattern, units, frequency in _MEASURES:
        match = pattern.search(sentence)
        if match:
            return AskedQuantity(match.group(0), units, frequency)
    for match in _COUNT_QUESTION.finditer(sentence):
        classifier, rest = match.group(1) or "", match.group(2)
        for unit in _UNITS_LONGEST_FIRST:
            if (classifier + rest).startswith(unit):
                # The phrase ends with the unit: in 「几次安全检查」 安全 is the subject, not part of the asking.
                end = match.start(2) + len(unit) - len(classifier)
                return AskedQuantity(sentence[match.start() : end], _UNITS[unit])
        if not rest:  # 「收多少？」「配几个？」
            return AskedQuantity(match.group(0), _COUNT if classifier else _ANY_UNIT)
        if classifier:  # 「多少个学生」「几名老师」: a count of people or things
            return AskedQuantity(match.group(0), _COUNT)
        # A unit we have no entry for (兆帕、学时、平方米): the answer must carry the same unit.
        return AskedQuantity(match.group(0)[: match.end(0) - match.start(0) - len(rest) + 1], re.escape(rest[0]))
    return None


def missing_quantity(
    question: str,
    passages: list[str],
    ignore: tuple[str, ...] = (),
    idf: Callable[[str], float] | None = None,
    headings: list[str] | None = None,
) -> bool:
    """True when the question asks for a number that no passage states in the asked-for unit, in a
    sentence about the question's subject, as the kind of limit asked for.

    A number counts only where its sentence (or, for a list item, the lead-in that introduces the list)
    shares a topic word with the question: the 两次 of 「督导每学期不少于两次」 does not say how often
    spring outings may be held. The period of a rate (「一个学期」) is not a topic word, and a minimum never
    answers a question about a maximum or the reverse. ``ignore`` lists words that only say who is asking
    (学校、老师…); when nothing but such words names the subject (「班主任要配几名」), they are kept after
    all, since a number about anything at all is no answer.

    With ``idf``, sharing one common word is not enough: the words the sentence shares must carry at least
    ``_QUANTITY_TOPIC_SHARE`` of the subject's idf weight, so 「学习时间不超过六小时」 does not answer
    「睡够几个小时」 through 时间 alone. ``headings`` (one per passage: its document title and section path)
    name the subject of every sentence under them: 宁波 in 「宁波市学校安全条例」 need not be repeated.
    """
    heads = headings or [""] * len(passages)
    weigh = idf or (lambda word: 1.0)
    share = _QUANTITY_TOPIC_SHARE if idf else 0.0
    whole = _subject_words(question, ignore)
    for sentence in _question_sentences(question):
        for asked in asked_quantities(sentence):
            # The subject is either the sentence that asks (「例会多久开一回？领导要参加几次会？」 asks about two
            # things) or, for a follow-up such as 「多久能有答复？」, the whole question.
            subjects = [_subject_words(sentence, ignore, asked.phrase), whole]
            # Verbs weigh as much as nouns here: in 「睡够几个小时」「坐班多少小时」 the verb is what is measured.
            topics = [[(word, min(weigh(word), 8.0)) for word, _ in words] for words in subjects if words]
            if not any(_states(asked, passages, topic, heads, share) for topic in topics or [[]]):
                return True
    return False


def _question_sentences(question: str) -> list[str]:
    return [s for s in re.split(r"(?<=[？?。！!；;])", question) if s]


def _subject_words(text: str, ignore: tuple[str, ...], *asked: str) -> list[tuple[str, float]]:
    """Topic words of a quantity question once the asking words are masked; the words in ``ignore`` are kept
    when nothing else is left."""
    masked = text
    # The period of a rate and the limit asked for (最多、不少于…) frame the number; they are not its subject.
    for frame in (_RATE_PERIOD, _ASKS_MAX, _ASKS_MIN, _LIMIT_WORDS):
        masked = frame.sub("，", masked)
    for phrase in asked or [a.phrase for a in asked_quantities(text)]:
        masked = masked.replace(phrase, "，")
    return _topic_words(masked, ignore) or _topic_words(masked, ())


def _shares_topic(topic: list[tuple[str, float]], sentences: list[str], share: float) -> bool:
    """Whether the sentences name at least one of the subject words and at least ``share`` of their weight."""
    total = sum(weight for _, weight in topic)
    if not total:
        return True
    shared = sum(weight for word, weight in topic if any(_found(word, s) for s in sentences))
    return shared > 0 and shared >= share * total


def _states(
    asked: AskedQuantity, passages: list[str], topic: list[tuple[str, float]], headings: list[str], share: float
) -> bool:
    number = re.compile(rf"{_NUM}\s*(?:余|多)?个?(?:{asked.units})" + (f"|{_FREQUENCY}" if asked.frequency else ""))
    for text, heading in zip(passages, headings, strict=True):
        spans = sentence_spans(text)
        for i, (start, end) in enumerate(spans):
            if not any(_fits_limit(asked.limit, text, m, start, end) and not _COUNTING_PERIOD.match(text, m.end())
                       for m in number.finditer(text, start, end)):
                continue
            # A list item names its subject in the lead-in that opens the list (「…应当符合下列条件：」).
            lead_ins = [spans[j] for j in {0, i - 1} if 0 <= j < i and text[spans[j][0] : spans[j][1]].endswith(("：", ":"))]
            around = [spans[i], *lead_ins]
            # A fine names what it punishes by reference (「违反本法第二十条规定的」): in a sanctions chapter the
            # amount answers a question about money with half the subject shared.
            need = share * _PENALTY_SHARE if "元" in asked.units.split("|") and _PENALTY_HEADING.search(heading) else share
            if _shares_topic(topic, [text[a:b] for a, b in around] + [heading], need):
                return True
    return False


def _fits_limit(limit: str, text: str, match: re.Match[str], start: int, end: int) -> bool:
    """False when the number is stated as the opposite limit of the one asked for."""
    if not limit:
        return True
    before = text[max(start, match.start() - 6) : match.start()]
    after = text[match.end() : min(end, match.end() + 2)]
    marked = {kind for kind, (lead, tail) in _STATED_LIMIT.items() if lead.search(before) or tail.search(after)}
    opposite = "min" if limit == "max" else "max"
    return marked != {opposite}


def missing_resource(question: str, passages: list[str]) -> bool:
    """True when the question asks for a form, template, web resource or hotline that no passage mentions,
    or asks which particular school or business to go to."""
    text = "".join(passages)
    return any(re.search(asked, question) and not re.search(named or asked, text) for _, asked, named in _RESOURCES)


def topic_coverage(question: str, passages: list[str], role_words: tuple[str, ...], bm25: BM25Index) -> float:
    """Idf-weighted share of the question's topic words (nouns count fully, verbs and adjectives half)
    that appear in one of the passages, directly, through the thesaurus, or by most of their characters."""
    total = found = 0.0
    for word, pos_weight in _topic_words(question, role_words):
        weight = min(idf_of(bm25, word), 8.0) * pos_weight
        total += weight
        # Each passage on its own: characters matched across the seam of two passages are no match.
        if any(_found(word, text) for text in passages):
            found += weight
    return found / total if total else 1.0


def _topic_words(question: str, ignore: tuple[str, ...]) -> list[tuple[str, float]]:
    """The question's content words with their part-of-speech weight (nouns 1, verbs and adjectives 0.5)."""
    stop = stopwords()
    words = []
    for word, flag in _tagged(question):
        if (len(word) < 2 or word in stop or word in ignore or word in _FRAME_WORDS or word in _MODAL_WORDS
                or not flag.startswith(_TOPIC_POS) or _ASKING_WORD.fullmatch(word)
                or (flag.startswith(("j", "l")) and len(word) < 3) or _MODAL_PLUS_CHAR.fullmatch(word)):
            continue
        words.append((word, 1.0 if flag.startswith(_NOUN_POS) else 0.5))
    return words


@lru_cache(maxsize=1024)
def _tagged(text: str) -> tuple[tuple[str, str], ...]:
    """Words of ``text`` with their part of speech; one question is tagged several times per answer."""
    return tuple((word, flag) for word, flag in get_pos_tagger().cut(text))


def _found(word: str, text: str) -> bool:
    """The word, a thesaurus term for it, or (for words of three or more characters) most of its bigrams."""
    return (
        word in text
        or any(term in text for term in thesaurus().get(word, ()))
        or (len(word) >= 3 and sum(word[i : i + 2] in text for i in range(len(word) - 1)) >= len(word) - 2)
    )
