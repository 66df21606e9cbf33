"""What comes out: the daily digest built from the store, its charts and its mail (the
backlash report is in ``monitor.backlash``)."""
