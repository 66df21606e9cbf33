"""``python -m monitor.cli``: the ``monitor`` command where its console script is not on the
PATH (the tests and the bench start daemons and passes this way)."""

from monitor.cli import main

main()
