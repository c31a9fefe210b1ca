"""Is a gateway serving? One judgment, used by `hermesctl probe` and by `serve`'s
hermes_gateway_serving: from what `ps` shows of the gateway (its row's state and platforms, as
models.Slot judges them) and from the agent's `serving` answer for its profile (the API server
asked on the container's loopback, the platforms its environment configures).

Serving means: the gateway is up (ps' `up`), every platform its running process started is
`connected`, every platform whose token its environment sets was started at all, its API server
(where it has one) answers `/health`, and when a prompt was sent the chat completion answered.
A gateway with neither platforms nor an API server serves nothing (it idles for cron). Stdlib
only: serve's scrape path imports it."""
from dataclasses import dataclass, field


@dataclass
class Verdict:
    serving: bool
    reason: str                 # serving, not-up, platform, not-started, env, api, chat, idle, no-answer
    problems: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        return "; ".join(self.problems)


def judge(state: str, platforms: dict | None, answer: dict | None, *, prompted: bool = False) -> Verdict:
    """`state` and `platforms` as the ps row has them; `answer` the agent's `serving` entry for
    the profile (None: the container did not answer)."""
    if state != "up":
        return Verdict(False, "not-up", [f"the gateway is {state}"])
    if not isinstance(answer, dict):
        return Verdict(False, "no-answer", ["the container did not say"])
    problems: list[tuple[str, str]] = []
    current = {name: p for name, p in (platforms or {}).items() if isinstance(p, dict)}
    for name, p in sorted(current.items()):
        if p.get("state") != "connected":
            message = p.get("error_message") or p.get("error_code")
            problems.append(("platform", f"{name} is {p.get('state') or 'unknown'}"
                             + (f" ({str(message)[:200]})" if message else "")))
    configured = [str(x) for x in answer.get("configured") or [] if isinstance(x, str)]
    for name in configured:
        if name not in current:
            problems.append(("not-started", f"{name} has a token but the gateway did not start it "
                             "(its log says why: a missing package, a bad token)"))
    if answer.get("error"):
        problems.append(("env", str(answer["error"])[:300]))
    api = answer.get("api") if isinstance(answer.get("api"), dict) else {}
    if api.get("enabled"):
        health = api.get("health") if isinstance(api.get("health"), dict) else None
        chat = api.get("chat") if isinstance(api.get("chat"), dict) else None
        if api.get("reason"):
            problems.append(("api", f"API server: {str(api['reason'])[:300]}"))
        elif health is None or not health.get("ok"):
            why = (health or {}).get("error") or "no answer"
            problems.append(("api", f"API server /health: {str(why)[:300]}"))
        elif prompted and (chat is None or not chat.get("ok")):
            why = (chat or {}).get("error") or "no answer"
            problems.append(("chat", f"chat completion: {str(why)[:300]}"))
    if problems:
        return Verdict(False, problems[0][0], [text for _, text in problems])
    if not current and not api.get("enabled"):
        return Verdict(False, "idle", ["no platform and no API server: it serves nothing (cron only)"])
    return Verdict(True, "serving")


def api_health_seconds(answer: dict | None) -> float | None:
    """How long /health took, when it was asked and answered (serve's probe latency)."""
    api = (answer or {}).get("api")
    health = api.get("health") if isinstance(api, dict) else None
    seconds = health.get("seconds") if isinstance(health, dict) else None
    return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None
