"""The image's HEALTHCHECK: exit 0 when the server in this container answers GET /health with 200.

The server's own settings (/data/options.json, then the environment) give the port, the interface
and TLS, so the check follows whatever the user configured. 200 also while models load (status
`loading`): a server that is up is not restarted for being busy (first start fetches models).
"""

from __future__ import annotations

import ssl
import sys
import urllib.error
import urllib.request

from ai_server.config import ConfigError, load_settings

TIMEOUT_S = 8.0
ANY_INTERFACE = {"", "0.0.0.0", "::"}  # compared with the setting, never bound


def health_url() -> tuple[str, ssl.SSLContext | None]:
    settings = load_settings()
    host = "127.0.0.1" if settings.host in ANY_INTERFACE else settings.host
    if ":" in host:
        host = f"[{host}]"
    if not settings.tls_enabled:
        return f"http://{host}:{settings.port}/health", None
    # The server's own certificate need not name 127.0.0.1: liveness, not identity, is checked.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return f"https://{host}:{settings.port}/health", context


def main() -> int:
    try:
        url, context = health_url()
    except ConfigError as err:
        print(f"unhealthy: configuration error: {err}")
        return 1
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=context) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (OSError, ValueError) as err:
        print(f"unhealthy: {url}: {err}")
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
