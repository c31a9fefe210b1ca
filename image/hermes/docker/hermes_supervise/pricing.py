# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Prices for usage rows without a recorded cost, as hermes insights computes them, without
importing hermes' pricing code on every `usage` (it pulls in requests and the model catalogue:
0.2 s of CPU per exec, 10x the rest of the answer).

hermes-agent's estimate is linear per route (model, provider, base URL): tokens of each kind
times that kind's price per million, plus the route's per-request price once per row; a kind
used without a price makes the whole row unknown (0 in insights' sums). So a route's five
prices are all that is needed: they are looked up once with hermes' own `get_pricing_entry`
and cached in HERMES_HOME/.hermesctl/usage-prices.json, keyed by the installed pricing module
(its size and mtime: a new hermes-agent starts a new cache).
"""
import json
import os
from decimal import Decimal

from . import contract as C

_MILLION = Decimal(1_000_000)


def _site() -> None:
    """The agent starts with -S; hermes' packages live in the venv's site-packages."""
    import sys
    if sys.flags.no_site:
        import site
        site.main()


def _module_key() -> str | None:
    import sys
    _site()
    for base in sys.path:
        path = os.path.join(base, "agent", "usage_pricing.py")
        try:
            st = os.stat(path)
        except OSError:
            continue
        return f"{st.st_size}-{st.st_mtime_ns}"
    return None


class Prices:
    """Route prices (strings of Decimals, None where hermes has none; None: no entry)."""

    @classmethod
    def lazy(cls) -> "Prices":
        """Reads its cache only when a row needs a price."""
        self = cls.__new__(cls)
        self._loaded, self.changed, self._lookup = False, False, None
        return self

    def __init__(self):
        self._loaded = False
        self.changed, self._lookup = False, None
        self._load()

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self.path = os.path.join(C.hermes_home(os.environ), C.CONTROL_DIR, "usage-prices.json")
        self.key = _module_key()
        self.routes: dict[str, list | None] = {}
        try:
            with open(self.path, "rb") as f:  # hermes' own file: read as data, size-capped
                doc = json.loads(f.read(1 << 20))
            if isinstance(doc, dict) and doc.get("key") == self.key and isinstance(doc.get("routes"), dict):
                self.routes = doc["routes"]
        except (OSError, ValueError):
            pass

    def _hermes(self):
        if self._lookup is None:
            from agent.usage_pricing import get_pricing_entry
            self._lookup = get_pricing_entry
        return self._lookup

    def route(self, model, provider, base_url) -> list | None:
        self._load()
        key = json.dumps([model or "", provider or "", base_url or ""])
        if key not in self.routes:
            entry = self._hermes()(model or "", provider=provider or None, base_url=base_url or None)
            self.routes[key] = None if entry is None else [
                None if v is None else str(v) for v in (entry.input_cost_per_million, entry.output_cost_per_million,
                                                        entry.cache_read_cost_per_million,
                                                        entry.cache_write_cost_per_million, entry.request_cost)]
            self.changed = True
        return self.routes[key]

    def cost(self, model, provider, base_url, i, o, cr, cw) -> float:
        """insights' `_estimate_cost` of one row: 0 when the route or a used kind has no price."""
        prices = self.route(model or "unknown", provider, base_url)
        if prices is None:
            return 0.0
        amount = Decimal(0)
        for tokens, price in zip((i or 0, o or 0, cr or 0, cw or 0), prices[:4]):
            if tokens and price is None:
                return 0.0
            if price is not None:
                amount += Decimal(tokens) * Decimal(price) / _MILLION
        if prices[4] is not None:
            amount += Decimal(prices[4])  # hermes counts one request per row
        return float(amount)

    def save(self) -> None:
        if not self.changed or self.key is None:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w") as f:
                json.dump({"key": self.key, "routes": self.routes}, f)
            os.replace(tmp, self.path)
            self.changed = False
        except OSError:  # a cache that cannot be written only costs time
            try:
                os.unlink(tmp)
            except OSError:
                pass
