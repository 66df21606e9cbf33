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
@click.option("--workers", type=click.IntRange(1, 32), default=1, show_default=True,
              help="Processes serving pages: one per core for a big team.")
@config_option
@errors_to_exit_codes
def web(host: str | None, port: int | None, workers: int, config_path: Path) -> None:
    """Serve the web inbox until Ctrl-C. Log in with an account from `monitor users add`."""
    from monitor.web.server import WebServer, serve_workers

    with opened(config_path) as (config, store):
        if not store.list_users():
            click.echo("No accounts yet: add one with `monitor users add NAME --role admin "
                       f"--config {config_path}`", err=True)
        if workers > 1:
            shown = f"{host or (config.main.web.host if config.main.web else '127.0.0.1')}"
            click.echo(f"web inbox on {shown}, {workers} processes (Ctrl-C stops them)")
            return serve_workers(config_path, config, host, port, workers)
        server = WebServer(config, store, host, port)
        click.echo(f"web inbox on {server.url} (Ctrl-C stops it)")
        server.run()
