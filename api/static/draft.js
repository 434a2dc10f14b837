// 「撰写述职报告」 panel: POST /v1/draft, show the draft with its citations, download it as .docx.
// Self-contained (its own helpers inside this function); server text is inserted as text, never as HTML.
"use strict";
(() => {
  const DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
  const byId = (id) => document.getElementById(id);

  function node(tag, props = {}, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
      else element[key] = value;
    }
    for (const child of children) {
      if (child !== null && child !== undefined) element.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return element;
  }

  function headers() {
    const key = localStorage.getItem("duty.apiKey");
    return { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) };
  }

  function request(format) {
    const section = byId("draft-section").value;
    return {
      role: byId("draft-role").value,
      unit: byId("draft-unit").value.trim(),
      year: Number(byId("draft-year").value),
      section: section || null,
      facts: byId("draft-facts").value,
      format,
    };
  }

  async function post(format) {
    const response = await fetch("/v1/draft", { method: "POST", headers: headers(), body: JSON.stringify(request(format)) });
    if (!response.ok) {
      let message = `请求失败（HTTP ${response.status}）`;
      try {
        const body = await response.json();
        if (body && body.error) message = typeof body.error === "string" ? body.error : body.error.message;
      } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  function setStatus(message, isError = false) {
    const status = byId("draft-status");
    status.textContent = message;
    status.classList.toggle("error-text", isError);
  }

  function citationItem(c) {
    const open = typeof window.openCitation === "function"
      ? node("button", { type: "button", className: "link", title: "查看原文", onclick: () => { byId("draft-panel").close(); window.openCitation(c); } }, `[${c.n}] 《${c.doc_title}》${c.section}`)
      : node("span", {}, `[${c.n}] 《${c.doc_title}》${c.section}`);
    return node("li", {}, open, node("div", { className: "draft-quote" }, `“${c.quote}”`), node("span", { className: "file" }, c.source));
  }

  function render(draft) {
    const parts = [node("h3", { className: "draft-title" }, draft.title)];
    if (draft.notices.length) parts.push(node("ul", { className: "draft-notices" }, ...draft.notices.map((n) => node("li", { className: "notice" }, n))));
    if (draft.preamble) parts.push(node("p", { className: "draft-text" }, draft.preamble));
    for (const section of draft.sections) {
      parts.push(node("h4", {}, section.heading));
      for (const line of section.text.split("\n")) {
        const pending = section.placeholders.includes(line);
        parts.push(node("p", { className: pending ? "draft-text draft-todo" : "draft-text" }, line));
      }
      if (section.citations.length) {
        parts.push(node("div", { className: "refs" }, node("h3", {}, "依据"), node("ol", { className: "citations" }, ...section.citations.map(citationItem))));
      }
    }
    if (draft.closing) parts.push(node("p", { className: "draft-text draft-closing" }, draft.closing));
    byId("draft-result").replaceChildren(...parts);
  }

  async function compose(event) {
    event.preventDefault();
    setStatus("正在起草…");
    byId("draft-submit").disabled = true;
    try {
      const draft = await (await post("json")).json();
      render(draft);
      byId("draft-download").disabled = false;
      setStatus(`已生成（${draft.sections.length} 个部分，用时 ${draft.seconds} 秒）。事实原样保留；请核对后再提交。`);
    } catch (error) {
      setStatus(error.message, true);
    } finally {
      byId("draft-submit").disabled = false;
    }
  }

  function filenameFrom(disposition) {
    const match = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
    try { return match ? decodeURIComponent(match[1]) : "述职报告.docx"; } catch (_) { return "述职报告.docx"; }
  }

  async function download() {
    setStatus("正在生成 Word 文件…");
    try {
      const response = await post("docx");
      const blob = await response.blob();
      const url = URL.createObjectURL(new Blob([blob], { type: DOCX }));
      const link = node("a", { href: url, download: filenameFrom(response.headers.get("Content-Disposition")) });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setStatus("Word 文件已下载。");
    } catch (error) {
      setStatus(error.message, true);
    }
  }

  function open() {
    const role = byId("role") ? byId("role").value : "";  // the chat's role selector, when set
    if ([...byId("draft-role").options].some((o) => o.value === role)) byId("draft-role").value = role;
    if (!byId("draft-year").value) byId("draft-year").value = String(new Date().getFullYear());
    setStatus("");
    byId("draft-panel").showModal();
  }

  function init() {
    if (!byId("draft-panel")) return;
    byId("draft-open").addEventListener("click", open);
    byId("draft-close").addEventListener("click", () => byId("draft-panel").close());
    byId("draft-form").addEventListener("submit", compose);
    byId("draft-download").addEventListener("click", download);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
