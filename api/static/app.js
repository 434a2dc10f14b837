// Web chat for the policy assistant. Plain DOM, no framework, no build step.
// Everything that comes from the server is inserted as text (textContent / text nodes), never as HTML.
"use strict";

const KIND_LABELS = {
  law: "法律", regulation: "行政法规", local_regulation: "地方性法规",
  bureau_document: "教育部门文件", sample_report: "述职报告范文", other: "其他",
};

const state = {
  sessionId: null,
  busy: false,
  source: null, // {chunk, highlight: {start, end} | null, full: bool}
};

const $ = (id) => document.getElementById(id);

/** Build an element: el("p", {className: "x"}, "text", childNode). Strings become text nodes. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// ------------------------------------------------------------------ HTTP
function authHeaders() {
  const key = localStorage.getItem("duty.apiKey");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function errorFrom(response) {
  let message = `请求失败（HTTP ${response.status}）`;
  try {
    const body = await response.json();
    if (body && body.error) message = typeof body.error === "string" ? body.error : body.error.message;
  } catch (_) { /* not JSON */ }
  if (response.status === 401) openKeyDialog(`需要访问密钥：${message}`);
  return new ApiError(response.status, message);
}

async function api(path, { method = "GET", json, body } = {}) {
  const headers = { ...authHeaders() };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: json !== undefined ? JSON.stringify(json) : body });
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}

/** Parse a Server-Sent Events body into {event, data} objects. */
async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// ------------------------------------------------------------------ conversation
function currentRole() { return $("role").value || null; }

// The conversation of this tab survives a reload: questions and the answers as the server sent them are kept in
// sessionStorage (per tab, gone with the tab) and drawn again on load.
const HISTORY_KEY = "duty.conversation";
const HISTORY_MAX = 40;

function loadHistory() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "null");
    return saved && Array.isArray(saved.turns) ? saved : { sessionId: null, turns: [] };
  } catch (_) {
    return { sessionId: null, turns: [] };
  }
}

function remember(question, role, answer) {
  const history = loadHistory();
  history.sessionId = state.sessionId;
  history.turns = [...history.turns, { question, role, answer }].slice(-HISTORY_MAX);
  try {
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history));
  } catch (_) { /* storage full or disabled: the page works, it just won't survive a reload */ }
}

function forgetHistory() { sessionStorage.removeItem(HISTORY_KEY); }

function addQuestion(question, role) {
  addMessage("user", el("div", { className: "who" }, role ? `我（${role}）` : "我"), el("div", { className: "text" }, question));
}

function showAnswer(bubble, answer) {
  if (answer.draft) renderDraft(bubble, answer);
  else renderAnswer(bubble, answer);
}

function restoreHistory() {
  const history = loadHistory();
  if (!history.turns.length) return;
  state.sessionId = history.sessionId;
  const welcome = document.querySelector(".welcome");
  if (welcome) welcome.remove();
  for (const turn of history.turns) {
    addQuestion(turn.question, turn.role);
    showAnswer(addMessage("assistant"), turn.answer);
  }
}

async function ensureSession() {
  if (!state.sessionId) {
    const session = await api("/v1/sessions", { method: "POST", json: { role: currentRole() } });
    state.sessionId = session.session_id;
  }
  return state.sessionId;
}

function scrollLog() { const log = $("log"); log.scrollTop = log.scrollHeight; }

function addMessage(kind, ...children) {
  const node = el("div", { className: `message ${kind}` }, ...children);
  $("log").append(node);
  scrollLog();
  return node;
}

async function askStreaming(question) {
  const body = { question, role: currentRole(), stream: true, session_id: await ensureSession() };
  const response = await fetch("/v1/ask", {
    method: "POST", headers: { "Content-Type": "application/json", ...authHeaders() }, body: JSON.stringify(body),
  });
  if (response.status === 404 && state.sessionId) {
    state.sessionId = null; // the session expired on the server: start a new one and try once more
    const retry = { ...body, session_id: await ensureSession() };
    return fetch("/v1/ask", {
      method: "POST", headers: { "Content-Type": "application/json", ...authHeaders() }, body: JSON.stringify(retry),
    });
  }
  return response;
}

async function ask(question) {
  if (state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  const welcome = document.querySelector(".welcome");
  if (welcome) welcome.remove();
  const role = currentRole();
  addQuestion(question, role);
  const live = el("div", { className: "text streaming" });
  const bubble = addMessage("assistant pending", el("div", { className: "who" }, "政策助手"), live);
  try {
    const response = await askStreaming(question);
    if (!response.ok) throw await errorFrom(response);
    let final = null;
    for await (const { event, data } of readEvents(response)) {
      if (event === "delta") { live.textContent += data.text; scrollLog(); }
      else if (event === "final") final = data;
      else if (event === "error") throw new ApiError(data.status || 500, data.error);
    }
    if (!final) throw new ApiError(500, "回答没有完整返回，请重试。");
    showAnswer(bubble, final);
    remember(question, role, final);
  } catch (error) {
    bubble.className = "message assistant error";
    bubble.replaceChildren(el("div", { className: "who" }, "出错了"), el("div", { className: "text" }, error.message));
  } finally {
    state.busy = false;
    $("send").disabled = false;
    scrollLog();
  }
}

function shortSection(section) { return section.replaceAll(" > ", " "); }

function relatedButton(hit) {
  return el("button", {
    type: "button", className: "link related", onclick: () => openChunk(hit.chunk_id, null),
  }, `《${hit.doc_title}》${shortSection(hit.section)}`);
}

/** Answer text with every [n] that names a citation turned into a button, and every line that names a
 *  related passage (「- 《title》section」) turned into a link to it. Returns [body, related hits not linked]. */
function answerBody(text, citations, related = []) {
  const byNumber = new Map(citations.map((c) => [String(c.n), c]));
  const byLine = new Map(related.map((h) => [`- 《${h.doc_title}》${shortSection(h.section)}`, h]));
  const linked = new Set();
  const body = el("div", { className: "text" });
  for (const line of text.split("\n")) {
    const hit = byLine.get(line.trim());
    if (hit) {
      linked.add(hit);
      body.append(el("p", { className: "related-line" }, "· ", relatedButton(hit)));
      continue;
    }
    const p = el("p");
    let last = 0;
    for (const match of line.matchAll(/\[(\d+)\]/g)) {
      const citation = byNumber.get(match[1]);
      if (!citation) continue;
      p.append(document.createTextNode(line.slice(last, match.index)));
      p.append(citeButton(citation));
      last = match.index + match[0].length;
    }
    p.append(document.createTextNode(line.slice(last)));
    body.append(p);
  }
  return [body, related.filter((h) => !linked.has(h))];
}

function citeButton(citation) {
  return el("button", {
    type: "button", className: "cite", title: `《${citation.doc_title}》${citation.section}`,
    dataset: { n: String(citation.n) }, onclick: () => openCitation(citation),
  }, `[${citation.n}]`);
}

function renderAnswer(bubble, answer) {
  bubble.className = answer.grounded ? "message assistant answer" : "message assistant notfound";
  bubble.dataset.grounded = String(answer.grounded);
  const parts = [el("div", { className: "who" }, "政策助手")];
  if (!answer.grounded) parts.push(el("div", { className: "badge" }, "⚠ 现有政策文件中未找到依据"));
  const [body, unlinked] = answerBody(answer.answer, answer.citations, answer.grounded ? [] : answer.related);
  parts.push(body);
  if (answer.citations.length) {
    const list = el("ol", { className: "citations" });
    for (const c of answer.citations) {
      list.append(el("li", {},
        citeButton(c), " ",
        el("button", { type: "button", className: "link", onclick: () => openCitation(c) }, `《${c.doc_title}》${shortSection(c.section)}`),
        el("span", { className: "file" }, ` · ${c.source}`)));
    }
    parts.push(el("div", { className: "refs" }, el("h3", {}, "引用原文"), list));
  }
  if (unlinked.length) {
    const list = el("ul", { className: "related-list" }, ...unlinked.map((hit) => el("li", {}, relatedButton(hit))));
    parts.push(el("div", { className: "refs" }, el("h3", {}, "相关条文（仅供参考，不作为依据）"), list));
  }
  for (const notice of answer.notices || []) parts.push(el("p", { className: "notice" }, notice));
  bubble.replaceChildren(...parts);
}

// ------------------------------------------------------------------ drafts written in chat
/** A chat answer that is a 述职报告 draft: title, sections with clickable [n], 依据 list, 「下载 Word」. */
function renderDraft(bubble, answer) {
  const draft = answer.draft;
  bubble.className = "message assistant answer draft-card";
  bubble.dataset.grounded = String(answer.grounded);
  const parts = [el("div", { className: "who" }, "政策助手 · 述职报告草稿"), el("h3", { className: "draft-title" }, draft.title)];
  for (const notice of answer.notices || []) parts.push(el("p", { className: "notice" }, notice));
  if (draft.preamble) parts.push(answerBody(draft.preamble, answer.citations)[0]);
  for (const section of draft.sections) {
    parts.push(el("h4", { className: "draft-heading" }, section.heading));
    const [body] = answerBody(section.text, answer.citations);
    for (const line of body.children) {
      if (section.placeholders.includes(line.textContent)) line.classList.add("draft-todo");
    }
    parts.push(body);
  }
  if (draft.closing) parts.push(el("p", { className: "draft-closing" }, draft.closing));
  if (answer.citations.length) {
    const list = el("ol", { className: "citations" }, ...answer.citations.map((c) => el("li", {},
      citeButton(c), " ",
      el("button", { type: "button", className: "link", onclick: () => openCitation(c) }, `《${c.doc_title}》${shortSection(c.section)}`),
      el("span", { className: "file" }, ` · ${c.source}`))));
    parts.push(el("div", { className: "refs" }, el("h3", {}, "引用依据"), list));
  }
  const status = el("span", { className: "status" });
  const button = el("button", { type: "button", className: "draft-download", onclick: () => downloadDraft(draft, button, status) }, "下载 Word");
  parts.push(el("div", { className: "panel-actions" }, button, " ", status));
  bubble.replaceChildren(...parts);
}

/** GET the .docx (with the API key, so a plain link would not do) and save it under the draft's file name. */
async function downloadDraft(draft, button, status) {
  button.disabled = true;
  status.textContent = "";
  try {
    const response = await fetch(new URL(draft.download_url, location.href).pathname, { headers: authHeaders() });
    if (!response.ok) throw await errorFrom(response);
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: draft.filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    status.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ source panel
function openCitation(citation) { return openChunk(citation.chunk_id, { start: citation.start, end: citation.end }); }

async function openChunk(chunkId, highlight) {
  const panel = $("source");
  panel.hidden = false;
  document.body.classList.add("with-source");
  $("source-title").textContent = "正在打开原文…";
  $("source-text").replaceChildren();
  try {
    const chunk = await api(`/v1/chunks/${encodeURIComponent(chunkId)}`);
    state.source = { chunk, highlight, full: false };
    renderSource();
  } catch (error) {
    $("source-title").textContent = "无法打开原文";
    $("source-text").replaceChildren(el("p", { className: "error-text" }, error.message));
  }
}

/** Text with [start, end) marked; offsets are relative to `text`. */
function markedText(text, start, end, className) {
  const box = $("source-text");
  if (start === null || start < 0 || end > text.length || start >= end) {
    box.replaceChildren(document.createTextNode(text));
    return null;
  }
  const mark = el("mark", { className }, text.slice(start, end));
  box.replaceChildren(document.createTextNode(text.slice(0, start)), mark, document.createTextNode(text.slice(end)));
  return mark;
}

function renderSource() {
  const { chunk, highlight } = state.source;
  $("source-title").textContent = `《${chunk.doc_title}》`;
  $("source-meta").textContent = `${shortSection(chunk.section)} · ${KIND_LABELS[chunk.doc_kind] || chunk.doc_kind} · ${chunk.source}`;
  const note = $("source-note");
  note.hidden = !chunk.superseded_by;
  note.textContent = chunk.superseded_by ? `此文件已有新版本：${chunk.superseded_by}` : "";
  const start = highlight ? highlight.start - chunk.start : null;
  const end = highlight ? highlight.end - chunk.start : null;
  const mark = markedText(chunk.text, start, end, "quote");
  $("source-full").textContent = "查看全文";
  if (mark) mark.scrollIntoView({ block: "center" });
}

async function toggleFullText() {
  if (!state.source) return;
  if (state.source.full) { state.source.full = false; renderSource(); return; }
  const { chunk, highlight } = state.source;
  try {
    const doc = await api(`/v1/documents/${encodeURIComponent(chunk.doc_id)}/text`);
    state.source.full = true;
    const span = highlight || { start: chunk.start, end: chunk.end };
    const mark = markedText(doc.text, span.start, span.end, highlight ? "quote" : "article");
    $("source-full").textContent = "只看本条";
    if (mark) mark.scrollIntoView({ block: "center" });
  } catch (error) {
    $("source-note").hidden = false;
    $("source-note").textContent = error.message;
  }
}

function closeSource() {
  $("source").hidden = true;
  document.body.classList.remove("with-source");
  state.source = null;
}

// ------------------------------------------------------------------ documents (admins)
async function loadDocuments() {
  const body = $("docs-body");
  try {
    const { documents } = await api("/v1/documents");
    body.replaceChildren(...documents.map((d) => el("tr", {},
      el("td", {}, d.title),
      el("td", {}, KIND_LABELS[d.kind] || d.kind),
      el("td", { className: "num" }, String(d.chunks)),
      el("td", { className: "file" }, d.source),
      el("td", {}, el("button", { type: "button", className: "danger", onclick: () => removeDocument(d) }, "删除")))));
    if (!documents.length) body.replaceChildren(el("tr", {}, el("td", { colSpan: 5 }, "知识库为空。")));
  } catch (error) {
    setDocsStatus(error.message, true);
  }
}

function setDocsStatus(message, isError = false) {
  const status = $("docs-status");
  status.textContent = message;
  status.classList.toggle("error-text", isError);
}

async function uploadDocuments(event) {
  event.preventDefault();
  const input = $("upload-input");
  if (!input.files.length) { setDocsStatus("请先选择文件。", true); return; }
  const form = new FormData();
  for (const file of input.files) form.append("file", file, file.name);
  $("upload-button").disabled = true;
  setDocsStatus("正在上传并建立索引…");
  try {
    const report = await api("/v1/documents", { method: "POST", body: form });
    const parts = [];
    if (report.added.length) parts.push(`新增 ${report.added.join("、")}`);
    if (report.updated.length) parts.push(`更新 ${report.updated.join("、")}`);
    if (report.unchanged.length) parts.push(`未变 ${report.unchanged.join("、")}`);
    if (report.skipped.length) parts.push(`跳过 ${report.skipped.join("；")}`);
    input.value = "";
    await loadDocuments(); // the list shows the new file before the status line says it is there
    setDocsStatus(`${parts.join("；")}。`);
  } catch (error) {
    setDocsStatus(`上传失败：${error.message}`, true);
  } finally {
    $("upload-button").disabled = false;
  }
}

async function removeDocument(doc) {
  if (!window.confirm(`从知识库删除《${doc.title}》（${doc.source}）？`)) return;
  try {
    await api(`/v1/documents/${encodeURIComponent(doc.doc_id)}`, { method: "DELETE" });
    setDocsStatus(`已删除 ${doc.source}。`);
    await loadDocuments();
  } catch (error) {
    setDocsStatus(`删除失败：${error.message}`, true);
  }
}

// ------------------------------------------------------------------ API key
function openKeyDialog(message) {
  const dialog = $("key-dialog");
  if (message) $("key-message").textContent = message;
  $("key-input").value = localStorage.getItem("duty.apiKey") || "";
  if (!dialog.open) dialog.showModal();
}

function closeKeyDialog() {
  if ($("key-dialog").returnValue !== "save") return;
  const key = $("key-input").value.trim();
  if (key) localStorage.setItem("duty.apiKey", key);
  else localStorage.removeItem("duty.apiKey");
}

// ------------------------------------------------------------------ wiring
function submitQuestion(event) {
  event.preventDefault();
  const box = $("question");
  const question = box.value.trim();
  if (!question || state.busy) return;
  box.value = "";
  ask(question);
}

function init() {
  const savedRole = localStorage.getItem("duty.role");
  if (savedRole !== null) $("role").value = savedRole;
  $("role").addEventListener("change", () => {
    localStorage.setItem("duty.role", $("role").value);
    if (document.querySelector(".message")) addMessage("system", `已切换角色：${$("role").value || "未选择"}`);
  });
  $("ask-form").addEventListener("submit", submitQuestion);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitQuestion(event);
  });
  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => ask(button.textContent));
  }
  $("new-chat").addEventListener("click", () => {
    state.sessionId = null;
    forgetHistory();
    $("log").replaceChildren();
    closeSource();
    $("question").focus();
  });
  $("source-close").addEventListener("click", closeSource);
  $("source-full").addEventListener("click", toggleFullText);
  $("docs-toggle").addEventListener("click", () => { setDocsStatus(""); $("docs-panel").showModal(); loadDocuments(); });
  $("docs-close").addEventListener("click", () => $("docs-panel").close());
  $("upload-form").addEventListener("submit", uploadDocuments);
  $("key-button").addEventListener("click", () => openKeyDialog());
  $("key-dialog").addEventListener("close", closeKeyDialog);
  restoreHistory();
  $("question").focus();
}

document.addEventListener("DOMContentLoaded", init);
