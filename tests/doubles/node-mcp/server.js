#!/usr/bin/env node
// The Node twin of ../mcp_stdio.py: a stdio MCP server (newline-delimited JSON-RPC 2.0) with one
// tool, `stand_in_count`, whose answer carries a marker the test finds in the model's next request.
// Node's standard library only, so `npx` runs it from its folder without reaching a registry.
"use strict";
const readline = require("readline");
const MARKER = "node-mcp-stand-in-answer-3c9e";
const TOOL = {
  name: "stand_in_count",
  description: "Counts the letters of a word.",
  inputSchema: {type: "object", properties: {word: {type: "string"}}, required: ["word"]},
};

function answer(request) {
  const params = request.params || {};
  switch (request.method) {
    case "initialize":
      return {protocolVersion: params.protocolVersion || "2025-06-18", capabilities: {tools: {listChanged: false}},
              serverInfo: {name: "stand-in-node-mcp", version: "1.0.0"}};
    case "tools/list":
      return {tools: [TOOL]};
    case "tools/call": {
      const word = String((params.arguments || {}).word || "");
      return {content: [{type: "text", text: `${MARKER}: ${word} has ${word.length} letters (node ${process.version})`}],
              isError: false};
    }
    case "ping":
      return {};
    default:
      return null;
  }
}

readline.createInterface({input: process.stdin}).on("line", (line) => {
  if (!line.trim()) return;
  const request = JSON.parse(line);
  if (!("id" in request)) return; // a notification: no answer
  const result = answer(request);
  const reply = result === null
    ? {jsonrpc: "2.0", id: request.id, error: {code: -32601, message: `no method ${request.method}`}}
    : {jsonrpc: "2.0", id: request.id, result};
  process.stdout.write(JSON.stringify(reply) + "\n");
});
