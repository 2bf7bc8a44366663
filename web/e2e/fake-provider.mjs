// A fake LLM on loopback that speaks OpenAI's Chat Completions streaming wire format (the
// chunks of ../shared/fixtures/providers/openai-text-usage.sse). What it answers is chosen by
// the last user message, so a test scripts the model by what it types:
//   "slow:N[:ms]"  N words "w1 … wN", one chunk every ms (default 25)
//   "tool:CODE"    first a run_javascript call with {"code": CODE}; after the result, an answer
//                  quoting it
//   "think"        reasoning deltas, then an answer
//   "fail"         a 400 with OpenAI's error body (not retryable)
//   "flaky:TAG"    a 400 the first time this text is asked, then an answer ("Recovered.")
//   "unauthorized" a 401, as for a key the provider refuses
//   anything else  a short markdown answer with a code block
import http from "node:http";

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export function words(n) {
  return Array.from({ length: n }, (_, i) => `w${i + 1}`).join(" ");
}

function chunk(delta, finish = null) {
  return { id: "chatcmpl-e2e", object: "chat.completion.chunk", model: "fake-model", choices: [{ index: 0, delta, finish_reason: finish }] };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stream(res, request) {
  const messages = request.messages ?? [];
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const text = typeof lastUser?.content === "string" ? lastUser.content : (lastUser?.content ?? []).map((p) => p.text ?? "").join("");
  const lastTool = messages[messages.length - 1]?.role === "tool" ? messages[messages.length - 1] : null;
  let open = true;
  res.on("close", () => (open = false));
  const send = (obj) => open && res.write(`data: ${JSON.stringify(obj)}\n\n`);
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  send(chunk({ role: "assistant", content: "" }));
  let outputTokens = 0;
  let finish = "stop";
  const slow = /^slow:(\d+)(?::(\d+))?/.exec(text);
  const tool = /^tool:(.+)$/s.exec(text);
  if (slow) {
    const n = Number(slow[1]);
    const every = Number(slow[2] ?? 25);
    for (let i = 1; i <= n && open; i++) {
      send(chunk({ content: i === 1 ? "w1" : ` w${i}` }));
      outputTokens++;
      if (every) await sleep(every);
    }
  } else if (tool && !lastTool) {
    const args = JSON.stringify({ code: tool[1] });
    send(chunk({ tool_calls: [{ index: 0, id: "call_e2e_1", type: "function", function: { name: "run_javascript", arguments: "" } }] }));
    send(chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] }));
    finish = "tool_calls";
    outputTokens = 12;
  } else if (lastTool) {
    send(chunk({ content: `The tool answered: ${lastTool.content}` }));
    outputTokens = 8;
  } else if (text.startsWith("flaky:")) {
    send(chunk({ content: "Recovered." }));
    outputTokens = 2;
  } else if (text.startsWith("think")) {
    for (const part of ["Let me ", "think."]) send(chunk({ reasoning_content: part }));
    send(chunk({ content: "Thought it through." }));
    outputTokens = 6;
  } else {
    const answer = ["Here is **bold** text and code:\n\n", "```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n\n", "Done."];
    for (const part of answer) {
      send(chunk({ content: part }));
      await sleep(10);
    }
    outputTokens = 20;
  }
  send(chunk({}, finish));
  send({ id: "chatcmpl-e2e", object: "chat.completion.chunk", model: "fake-model", choices: [], usage: { prompt_tokens: 30, completion_tokens: outputTokens, total_tokens: 30 + outputTokens } });
  if (open) res.end("data: [DONE]\n\n");
}

/** Starts the fake on a free loopback port; `requests` records every completion request. */
export async function startFakeProvider() {
  const requests = [];
  const failedOnce = new Set();
  const server = http.createServer((req, res) => {
    let size = 0;
    const parts = [];
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else parts.push(c);
    });
    req.on("end", () => {
      if (req.method === "GET" && req.url?.endsWith("/models")) {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ object: "list", data: [{ id: "fake-model", object: "model" }] }));
        return;
      }
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res.writeHead(404).end();
        return;
      }
      let body;
      try {
        body = JSON.parse(Buffer.concat(parts).toString("utf8"));
      } catch {
        res.writeHead(400).end();
        return;
      }
      requests.push(body);
      const last = [...(body.messages ?? [])].reverse().find((m) => m.role === "user");
      const asked = typeof last?.content === "string" ? last.content : "";
      const firstFlake = asked.startsWith("flaky:") && !failedOnce.has(asked);
      if (firstFlake) failedOnce.add(asked);
      if (asked.startsWith("fail") || firstFlake) {
        res.writeHead(400, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { message: "secret internal detail", type: "invalid_request_error", code: null } }));
        return;
      }
      if (asked.startsWith("unauthorized")) {
        res.writeHead(401, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } }));
        return;
      }
      stream(res, body).catch(() => res.destroy());
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(r)) };
}
