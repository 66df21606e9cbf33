"""``monitor web``: serve the web inbox (the outreach queue in a browser, reports for leads).

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 the store cannot be opened, 2 bad usage or
configuration (a port in use names ``web.port``).
"""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.kit import config_option, errors_to_exit_codes, opened


@click.command("web")
@click.option("--host", help="Address to listen on (default: web.host, else 127.0.0.1). "
              "To open it to a team, put it behind a reverse proxy with TLS.")
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port (default: web.port, else 8080).")
@config_option
@errors_to_exit_codes
def web(host: str | None, port: int | None, config_path: Path) -> None:
    """Serve the web inbox until Ctrl-C. Log in with an account from `monitor users add`."""
    from monitor.web.server import WebServer

    with opened(config_path) as (config, store):
        server = WebServer(config, store, host, port)
        if not store.list_users():
            click.echo("No accounts yet: add one with `monitor users add NAME --role admin "
                       f"--config {config_path}`", err=True)
        click.echo(f"web inbox on {server.url} (Ctrl-C stops it)")
        server.run()
