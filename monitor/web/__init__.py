"""The web inbox (``monitor web``): the outreach queue worked in a browser, reports for leads.

Server-rendered pages (Starlette, Jinja2) with a little htmx and our own small script, every
asset in the package (no CDN: it works offline and behind a firewall), reading and writing
through the same case commands as the CLI (``monitor.cases``).
"""
