"""`runbook serve`: Alertmanager's webhook in, the evidence archived seconds after the alert.

alerts     the webhook payload (version 4), read and checked (pure)
routes     which scenarios an alert runs, with which parameters: matchers, templates, the catalog
incidents  one incident per alert group: the plan for a notification, the state, the journal
notify     the initial alert and the resolution, from the evidence, posted with links to it
metrics    what /metrics exposes
web        the index of incidents and the evidence it links to, read-only and escaped
server     AlertServer: the HTTP endpoints, the bounded queue, the workers on warm kernels"""

from .alerts import Alert, BadPayload, Notification, parse
from .routes import DEFAULT_ROUTES, Catalog, Route, Routing, load_routing
from .server import AlertServer, Options, serve_forever

__all__ = [
    "DEFAULT_ROUTES",
    "Alert",
    "AlertServer",
    "BadPayload",
    "Catalog",
    "Notification",
    "Options",
    "Route",
    "Routing",
    "alerts",
    "incidents",
    "load_routing",
    "metrics",
    "notify",
    "parse",
    "routes",
    "serve_forever",
    "server",
    "web",
]
