"""A stdio MCP server (stdlib only) with one tool, `stand_in_lookup`, whose answer carries a marker
the test can find in the model's next request. Speaks newline-delimited JSON-RPC 2.0 on
stdin/stdout, as the MCP stdio transport does: initialize, tools/list, tools/call, ping.
Every tool call is appended to the file named by the first argument (when given)."""
import json
import sys

MARKER = "mcp-stand-in-answer-7d41"
TOOL = {"name": "stand_in_lookup", "description": "Looks a word up in the stand-in's dictionary.",
        "inputSchema": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}}


def answer(request: dict):
    method = request.get("method")
    if method == "initialize":
        version = (request.get("params") or {}).get("protocolVersion", "2025-06-18")
        return {"protocolVersion": version, "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "stand-in-mcp", "version": "1.0.0"}}
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call":
        params = request.get("params") or {}
        if len(sys.argv) > 1:
            with open(sys.argv[1], "a") as log:
                log.write(json.dumps(params) + "\n")
        word = (params.get("arguments") or {}).get("word", "")
        return {"content": [{"type": "text", "text": f"{MARKER}: {word!s} means stand-in"}], "isError": False}
    if method == "ping":
        return {}
    return None


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if "id" not in request:  # a notification (notifications/initialized, ...): no answer
            continue
        result = answer(request)
        if result is None:
            reply = {"jsonrpc": "2.0", "id": request["id"],
                     "error": {"code": -32601, "message": f"no method {request.get('method')}"}}
        else:
            reply = {"jsonrpc": "2.0", "id": request["id"], "result": result}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
