"""A Telegram Bot API stand-in (for python-telegram-bot pointed at it by hermes' Telegram adapter:
`platforms.telegram.extra.base_url: http://127.0.0.1:PORT/bot`).

Serves /bot<TOKEN>/<method> with what PTB needs to start and poll (getMe, deleteWebhook, a
long-polling getUpdates) and what the gateway calls to answer (sendMessage, editMessageText,
sendChatAction, sendMessageDraft, ...). Methods it does not know answer 404 as Telegram's do.
Every Bot API call is recorded: {"method", "params"}.

Test verbs: POST /_double/inject {"text", "user_id", "first_name"?} queues a private message from
that user for the bot's next getUpdates; GET /_double/records reads the calls.
"""
import json
import time
from urllib.parse import parse_qs, urlsplit

from common import Handler, State

BOT = {"id": 777000111, "is_bot": True, "first_name": "Stand-in", "username": "stand_in_bot",
       "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
# Bot API methods whose real answer is a bare True.
TRUE_METHODS = {"deleteWebhook", "setWebhook", "sendChatAction", "setMyCommands", "deleteMyCommands",
                "setMyShortDescription", "setMyDescription", "setMessageReaction", "deleteMessage",
                "sendMessageDraft", "setChatMenuButton", "answerCallbackQuery", "close", "logOut"}
LONG_POLL_CAP = 5.0  # seconds a getUpdates is held at most, whatever timeout it asks


def make_handler(args: list[str]):
    state = State()
    state.updates = []
    state.next_update = 1
    state.next_message = 1
    state.chats = {}
    return type("Telegram", (Telegram,), {"state": state})


def parse_params(content_type: str, body: bytes) -> dict:
    """PTB sends form fields whose non-string values are JSON; JSON bodies are accepted too."""
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(body)
    if content_type.startswith("application/x-www-form-urlencoded"):
        params = {}
        for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
            try:
                params[key] = json.loads(values[-1])
            except ValueError:
                params[key] = values[-1]
        return params
    return {"unparsed_content_type": content_type, "size": len(body)}


class Telegram(Handler):
    def do_GET(self):
        if not self.handle_double(b""):
            self.bot_api({k: _json_or_text(v) for k, v in self.query().items()})

    def do_POST(self):
        body = self.read_body()
        if not self.handle_double(body):
            self.bot_api(parse_params(self.headers.get("Content-Type", ""), body))

    def bot_api(self, params: dict):
        path = urlsplit(self.path).path
        if not path.startswith("/bot") or path.count("/") != 2:
            self.send_json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
            return
        method = path.rsplit("/", 1)[1]
        self.state.record({"method": method, "params": params})
        answer = self.answer(method, params)
        if answer is None:
            self.send_json({"ok": False, "error_code": 404, "description": "Not Found: method not found"}, 404)
        else:
            self.send_json({"ok": True, "result": answer})

    def answer(self, method: str, params: dict):
        state = self.state
        if method == "getMe":
            return BOT
        if method == "getUpdates":
            return self.get_updates(params)
        if method == "deleteWebhook":
            if params.get("drop_pending_updates"):
                with state.lock:
                    state.updates.clear()
            return True
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(state.updates)}
        if method == "getMyCommands":
            return []
        if method in ("sendMessage", "editMessageText"):
            return self.message(params)
        if method == "getChat":
            chat = state.chats.get(str(params.get("chat_id")))
            return {**chat, "accent_color_id": 0, "max_reaction_count": 11} if chat else None
        if method in TRUE_METHODS:
            return True
        return None

    def get_updates(self, params: dict) -> list:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), LONG_POLL_CAP)
        with self.state.lock:
            # An offset confirms every update below it (as Telegram forgets them).
            self.state.updates = [u for u in self.state.updates if u["update_id"] >= offset]
            while not self.state.updates and time.monotonic() < deadline:
                self.state.lock.wait(deadline - time.monotonic())
            return list(self.state.updates[: int(params.get("limit") or 100)])

    def message(self, params: dict) -> dict:
        with self.state.lock:
            if params.get("message_id"):
                message_id = int(params["message_id"])
            else:
                message_id = self.state.next_message
                self.state.next_message += 1
        chat = self.state.chats.get(str(params.get("chat_id"))) or {"id": int(params.get("chat_id") or 0),
                                                                    "type": "private", "first_name": "?"}
        return {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": BOT,
                "text": str(params.get("text", ""))}

    def control(self, verb: str, doc):
        if verb != "inject":
            return None
        user = {"id": int(doc["user_id"]), "is_bot": False, "first_name": doc.get("first_name", "Tester")}
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        with self.state.lock:
            self.state.chats[str(chat["id"])] = chat
            update = {"update_id": self.state.next_update,
                      "message": {"message_id": 100000 + self.state.next_update, "date": int(time.time()),
                                  "chat": chat, "from": user, "text": doc["text"]}}
            self.state.next_update += 1
            self.state.updates.append(update)
            self.state.lock.notify_all()
        return {"update_id": update["update_id"], "message_id": update["message"]["message_id"]}


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value
