// The chat page served at `/`: one self-contained document (inline CSS and script, no external assets,
// so it works offline and under a strict Content-Security-Policy). It streams from
// /v1/chat/completions with fetch and parses the server-sent events itself, showing the reasoning in a
// collapsible section as it arrives and the answer below it. Before the first message it shows what the
// model's card says it knows, with its example questions as buttons that ask them. Sampling follows
// the model's own defaults (generation_config.json) unless Settings override them. All model text is
// inserted as text, never as HTML.
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nanoseek chat</title>
<style>
  :root { --bg: #f7f7f8; --panel: #fff; --ink: #1d1d1f; --muted: #6b6b76; --line: #e3e3e8; --accent: #4d6bfe; --think: #f0f1f6; }
  @media (prefers-color-scheme: dark) {
    :root { --bg: #16161a; --panel: #1f1f24; --ink: #ececf1; --muted: #9a9aa6; --line: #33333b; --accent: #7c93ff; --think: #26262d; }
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--ink); display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; align-items: center; gap: 12px; padding: 10px 16px; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0; }
  #model-info { color: var(--muted); font-size: 13px; flex: 1; min-width: 200px; }
  header button, header summary { font: inherit; font-size: 13px; }
  main { flex: 1; overflow-y: auto; padding: 16px; }
  .column { max-width: 820px; margin: 0 auto; display: flex; flex-direction: column; gap: 14px; }
  .thread { display: flex; flex-direction: column; gap: 14px; }
  .msg { padding: 10px 14px; border-radius: 10px; white-space: pre-wrap; word-wrap: break-word; }
  .msg.user { align-self: flex-end; background: var(--accent); color: #fff; max-width: 80%; }
  .msg.assistant { background: var(--panel); border: 1px solid var(--line); }
  .msg.error { background: #fdecea; color: #8a1c12; border: 1px solid #f5c2bd; }
  details.thinking { background: var(--think); border-radius: 8px; padding: 6px 10px; margin-bottom: 8px; color: var(--muted); font-size: 14px; }
  details.thinking summary { cursor: pointer; user-select: none; }
  details.thinking[hidden] { display: none; }
  .reasoning { margin-top: 6px; white-space: pre-wrap; }
  .answer:empty::before { content: "…"; color: var(--muted); }
  .stats { color: var(--muted); font-size: 12px; margin-top: 6px; }
  footer { border-top: 1px solid var(--line); background: var(--panel); padding: 10px 16px; }
  form { max-width: 820px; margin: 0 auto; display: flex; gap: 8px; }
  textarea { flex: 1; resize: none; font: inherit; padding: 8px 10px; border-radius: 8px; border: 1px solid var(--line); background: var(--bg); color: var(--ink); min-height: 42px; max-height: 200px; }
  button { font: inherit; border: 1px solid var(--line); border-radius: 8px; padding: 6px 14px; background: var(--panel); color: var(--ink); cursor: pointer; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  button:disabled { opacity: .5; cursor: default; }
  #settings { max-width: 820px; margin: 8px auto 0; display: none; gap: 14px; flex-wrap: wrap; font-size: 13px; color: var(--muted); }
  #settings.open { display: flex; }
  #settings label { display: flex; flex-direction: column; gap: 2px; }
  #settings input, #settings textarea { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--ink); min-height: 0; }
  #settings input[type=number] { width: 150px; }
  #intro { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
  #intro p { margin: 0 0 10px; }
  #intro[hidden] { display: none; }
  .examples { display: flex; flex-wrap: wrap; gap: 8px; }
  .examples button { font-size: 14px; }
</style>
</head>
<body>
<header>
  <h1>nanoseek</h1>
  <div id="model-info">loading model info…</div>
  <button id="toggle-settings" type="button">Settings</button>
  <button id="new-chat" type="button">New chat</button>
</header>
<main><div class="column"><div id="intro" hidden><p id="about"></p><div class="examples" id="examples"></div></div><div class="thread" id="thread"></div></div></main>
<footer>
  <form id="composer">
    <textarea id="prompt" rows="1" placeholder="Ask something (Enter to send, Shift+Enter for a new line)"></textarea>
    <button id="send" class="primary" type="submit">Send</button>
    <button id="stop" type="button" disabled>Stop</button>
  </form>
  <div id="settings">
    <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" placeholder="model default"></label>
    <label>max tokens <input id="max-tokens" type="number" min="1" step="1" value="256"></label>
    <label>top p <input id="top-p" type="number" min="0" max="1" step="0.05" placeholder="model default"></label>
    <label>seed (blank: random) <input id="seed" type="number" step="1"></label>
    <label>API key <input id="api-key" type="password" autocomplete="off" placeholder="only if the server needs one"></label>
    <label style="flex:1 1 100%">system prompt <textarea id="system" rows="2"></textarea></label>
  </div>
</footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const thread = $("thread");
const turns = [];
let modelId = null;
let controller = null;

for (const id of ["temperature", "max-tokens", "top-p", "seed", "api-key", "system"]) {
  const saved = localStorage.getItem("nanoseek:" + id);
  if (saved !== null) $(id).value = saved;
  $(id).addEventListener("change", () => localStorage.setItem("nanoseek:" + id, $(id).value));
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function formatCount(n) {
  return n >= 1e9 ? (n / 1e9).toFixed(2) + "B" : n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : n >= 1e3 ? (n / 1e3).toFixed(1) + "K" : String(n);
}

async function loadModel() {
  try {
    const list = await fetch("/v1/models", { headers: headers() });
    if (!list.ok) throw new Error((await list.json()).error?.message ?? list.statusText);
    modelId = (await list.json()).data[0].id;
    const info = await (await fetch("/v1/models/" + encodeURIComponent(modelId), { headers: headers() })).json();
    $("model-info").textContent = modelId + " · " + info.architecture + " · " + formatCount(info.parameters.total) + " params (" +
      formatCount(info.parameters.active) + " active) · context " + info.context_length;
    $("model-info").title = info.description;
    if (!localStorage.getItem("nanoseek:max-tokens")) $("max-tokens").value = Math.min(256, info.limits.max_tokens);
    $("max-tokens").max = info.limits.max_tokens;
    // Blank sampling fields mean the model's own defaults; the placeholders say what those are.
    $("temperature").placeholder = "model: " + info.defaults.temperature + (info.defaults.temperature === 0 ? " (greedy)" : "");
    $("top-p").placeholder = "model: " + info.defaults.top_p;
    $("temperature").title = $("top-p").title = "blank: the model's own default (generation_config.json)";
    showIntro(info.model_card);
  } catch (err) {
    $("model-info").textContent = "model info unavailable: " + err.message;
  }
}

// The model card: what the model knows, and questions to click.
let card = null;
function showIntro(c) {
  card = c || card;
  const intro = $("intro");
  if (!card || (!card.description && card.examples.length === 0) || turns.length > 0) {
    intro.hidden = true;
    return;
  }
  $("about").textContent = card.description || "";
  const list = $("examples");
  list.replaceChildren();
  for (const q of card.examples) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "example";
    b.textContent = q;
    b.addEventListener("click", () => { if (!controller) send(q); });
    list.appendChild(b);
  }
  intro.hidden = false;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  thread.appendChild(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function assistantMessage() {
  const div = document.createElement("div");
  div.className = "msg assistant";
  const details = document.createElement("details");
  details.className = "thinking";
  details.open = true;
  details.hidden = true;
  const summary = document.createElement("summary");
  summary.textContent = "Thinking…";
  const reasoning = document.createElement("div");
  reasoning.className = "reasoning";
  details.append(summary, reasoning);
  const answer = document.createElement("div");
  answer.className = "answer";
  const stats = document.createElement("div");
  stats.className = "stats";
  div.append(details, answer, stats);
  thread.appendChild(div);
  return { div, details, summary, reasoning, answer, stats };
}

// Server-sent events: blank-line separated blocks whose "data:" lines carry one JSON chunk each.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\\r?\\n\\r?\\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\\r?\\n\\r?\\n/, "");
      const data = block.split(/\\r?\\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
  }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

async function send(text) {
  $("intro").hidden = true;
  turns.push({ role: "user", content: text });
  addMessage("user", text);
  const view = assistantMessage();
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...turns);
  const body = { model: modelId ?? undefined, messages, stream: true, max_tokens: Number($("max-tokens").value) };
  // Only what the user set in Settings: the server applies the model's defaults to the rest.
  if ($("temperature").value !== "") body.temperature = Number($("temperature").value);
  if ($("top-p").value !== "") body.top_p = Number($("top-p").value);
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  controller = new AbortController();
  setBusy(true);
  const started = performance.now();
  let firstAnswerAt = null;
  let answerText = "";
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const err = await response.json().catch(() => ({}));
      throw new Error(err.error?.message ?? response.status + " " + response.statusText);
    }
    for await (const chunk of events(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices && chunk.choices[0];
      const delta = choice ? choice.delta : {};
      if (delta.reasoning_content) {
        view.details.hidden = false;
        view.reasoning.textContent += delta.reasoning_content;
      }
      if (delta.content) {
        if (firstAnswerAt === null) {
          firstAnswerAt = performance.now();
          if (!view.details.hidden) {
            view.summary.textContent = "Thought for " + ((firstAnswerAt - started) / 1000).toFixed(1) + " s";
            view.details.open = false;
          }
        }
        answerText += delta.content;
        view.answer.textContent = answerText;
      }
      if (chunk.usage) {
        const u = chunk.usage;
        const secs = (performance.now() - started) / 1000;
        const reasoningTokens = u.completion_tokens_details ? u.completion_tokens_details.reasoning_tokens : 0;
        view.stats.textContent = u.completion_tokens + " tokens (" + reasoningTokens + " reasoning) · " + (u.completion_tokens / secs).toFixed(1) + " tokens/s" +
          (choice && choice.finish_reason === "length" ? " · stopped at max tokens" : "");
      }
      view.div.scrollIntoView({ block: "end" });
    }
    if (firstAnswerAt === null && !view.details.hidden) view.summary.textContent = "Thinking (no answer yet: raise max tokens?)";
  } catch (err) {
    if (err.name === "AbortError") view.stats.textContent = "stopped";
    else addMessage("error", "Error: " + err.message);
  } finally {
    turns.push({ role: "assistant", content: answerText });
    controller = null;
    setBusy(false);
    $("prompt").focus();
  }
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("new-chat").addEventListener("click", () => {
  if (controller) controller.abort();
  turns.length = 0;
  thread.replaceChildren();
  showIntro(null);
});
$("toggle-settings").addEventListener("click", () => $("settings").classList.toggle("open"));
$("api-key").addEventListener("change", loadModel);
loadModel();
</script>
</body>
</html>
`;
