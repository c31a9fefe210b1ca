"""An OpenAI-compatible model server (stand-in for a provider hermes reaches with
`model.provider: custom` and `model.base_url: http://127.0.0.1:PORT/v1`).

What hermes 0.19.0 sends it (seen in its records): at start GET /v1/models, /v1/models/<id> and
the probes of other local servers (/api/v1/models, Ollama's /api/show; answered 404); an agent
turn is a streamed chat completion (`stream: true`, `stream_options.include_usage`, its tools
offered); a session's title is a plain one without tools.

GET /v1/models lists one model; POST /v1/chat/completions answers with the next scripted reply,
as JSON or as a server-sent event stream when the request asks for `stream`. Every request is
recorded with its JSON body, so a test reads the system prompt, the messages and the tool results
the agent sent back.

Replies (POST /_double/replies with a list; they queue in order):
  {"content": "text"}                                  a plain answer
  {"tool_calls": [{"name": "terminal", "arguments": {"command": "git --version"}}]}
                                                       asks the agent to call tools
A reply may carry "match": a substring, or a list of them: it is then given only to a request
whose JSON body contains every one (so the agent's side calls, a session title say, and other
tests' sessions do not take it; '"tools"' matches the agent's own turns, which offer tools). A request
that no queued reply fits gets the default reply (the start argument, else "stand-in reply").
"""
import json
import time

from common import Handler, State

MODEL_ID = "stand-in-model"


def make_handler(args: list[str]):
    state = State()
    state.replies = []
    state.default = args[0] if args else "stand-in reply"
    state.count = 0
    return type("Model", (Model,), {"state": state})


class Model(Handler):
    def do_GET(self):
        if self.handle_double(b""):
            return
        self.state.record({"method": "GET", "path": self.path})
        if self.route().rstrip("/").endswith("/models"):
            self.send_json({"object": "list", "data": [
                {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "stand-in",
                 "context_length": 131072, "max_model_len": 131072}]})
        else:
            self.send_json({"error": {"message": f"no route {self.path}"}}, 404)

    def do_POST(self):
        body = self.read_body()
        if self.handle_double(body):
            return
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            doc = {"unparsed": body.decode(errors="replace")}
        self.state.record({"method": "POST", "path": self.path, "body": doc,
                           "authorization": self.headers.get("Authorization", "")})
        if not self.route().endswith("/chat/completions"):
            self.send_json({"error": {"message": f"no route {self.path}"}}, 404)
            return
        reply = take_reply(self.state, body.decode(errors="replace"))
        if doc.get("stream"):
            self.stream(doc, reply)
        else:
            self.send_json(completion(doc, reply, self.state))

    def stream(self, doc, reply):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        base = {"id": f"chatcmpl-{self.state.count}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": doc.get("model", MODEL_ID)}
        chunks = [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        if reply.get("content"):
            chunks.append({"index": 0, "delta": {"content": reply["content"]}, "finish_reason": None})
        for i, call in enumerate(tool_calls(reply, self.state)):
            chunks.append({"index": 0, "delta": {"tool_calls": [{"index": i, **call}]}, "finish_reason": None})
        chunks.append({"index": 0, "delta": {}, "finish_reason": finish_reason(reply)})
        for choice in chunks:
            self.event({**base, "choices": [choice]})
        if (doc.get("stream_options") or {}).get("include_usage"):
            self.event({**base, "choices": [], "usage": usage(doc, reply)})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def event(self, doc):
        self.wfile.write(b"data: " + json.dumps(doc).encode() + b"\n\n")
        self.wfile.flush()

    def control(self, verb, doc):
        if verb == "replies":
            with self.state.lock:
                self.state.replies.extend(doc)
                return {"queued": len(self.state.replies)}
        return None


def take_reply(state, text: str) -> dict:
    with state.lock:
        state.count += 1
        for i, reply in enumerate(state.replies):
            wanted = reply.get("match") or []
            if all(part in text for part in ([wanted] if isinstance(wanted, str) else wanted)):
                return state.replies.pop(i)
    return {"content": state.default}


def tool_calls(reply, state) -> list[dict]:
    return [{"id": call.get("id") or f"call_{state.count}_{i}", "type": "function",
             "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}}
            for i, call in enumerate(reply.get("tool_calls", []))]


def finish_reason(reply) -> str:
    return "tool_calls" if reply.get("tool_calls") else "stop"


def usage(doc, reply) -> dict:
    # Rough but nonzero, so usage accounting has something to count.
    prompt = max(1, len(json.dumps(doc.get("messages", []))) // 4)
    completion_tokens = max(1, len(json.dumps(reply)) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens}


def completion(doc, reply, state) -> dict:
    message = {"role": "assistant", "content": reply.get("content")}
    calls = tool_calls(reply, state)
    if calls:
        message["tool_calls"] = calls
    return {"id": f"chatcmpl-{state.count}", "object": "chat.completion", "created": int(time.time()),
            "model": doc.get("model", MODEL_ID),
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(reply)}],
            "usage": usage(doc, reply)}
