# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Prices for usage rows without a recorded cost, as hermes insights computes them, importing
hermes' pricing code (it pulls in requests and the model catalogue: 0.2 s of CPU, 10x the rest
of an answer) only when a row needs a price, once per process.

hermes-agent's estimate is linear per route (model, provider, base URL): tokens of each kind
times that kind's price per million, plus the route's per-request price once per row; a kind
used without a price makes the whole row unknown (0 in insights' sums). So a route's five
prices are all that is needed: they are looked up once per process with hermes' own
`get_pricing_entry` and kept in memory (the resident agent and `usage-watch` live long; the
one-shot agent pays the import). Never in a file: anything under HERMES_HOME is hermes-writable,
and a price file there would let the agent's own user set hermesctl's costs (a cache keyed by
the installed module once made $27.64 read as $3,524, and stayed after the file was mended).
"""
import json
from decimal import Decimal

_MILLION = Decimal(1_000_000)
MAX_ROUTES = 4096  # routes held; a hermes-written database can name any number of them


def _site() -> None:
    """The agent starts with -S; hermes' packages live in the venv's site-packages."""
    import sys
    if sys.flags.no_site:
        import site
        site.main()


class Prices:
    """Route prices (strings of Decimals, None where hermes has none; None: no entry)."""

    @classmethod
    def lazy(cls) -> "Prices":
        """hermes' pricing is imported when a row first needs a price."""
        return cls()

    def __init__(self):
        self._lookup = None
        self.routes: dict[str, list | None] = {}

    def _hermes(self):
        if self._lookup is None:
            _site()
            from agent.usage_pricing import get_pricing_entry
            self._lookup = get_pricing_entry
        return self._lookup

    def route(self, model, provider, base_url) -> list | None:
        key = json.dumps([model or "", provider or "", base_url or ""])
        if key not in self.routes:
            if len(self.routes) >= MAX_ROUTES:
                self.routes.clear()  # looked up again when needed: a cost in time, never in memory
            entry = self._hermes()(model or "", provider=provider or None, base_url=base_url or None)
            self.routes[key] = None if entry is None else [
                None if v is None else str(v) for v in (entry.input_cost_per_million, entry.output_cost_per_million,
                                                        entry.cache_read_cost_per_million,
                                                        entry.cache_write_cost_per_million, entry.request_cost)]
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
