"""hermesctl serve: the fleet's live state held in one process, served as Prometheus metrics, a
web page with server-sent events, and a unix socket the CLI asks before exec'ing anywhere."""
