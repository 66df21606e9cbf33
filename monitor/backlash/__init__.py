"""Launch backlash: how the public takes a launch (config ``events``), as it happens and after.

Imports nothing here, so ``monitor.runtime`` can read ``events`` without loading pandas or
scikit-learn.

* ``events``: the launches watched, and which posts talk about one.
* ``spikes``: storm detection, periods with far more (negative) posts than usual.
* ``storms``: a storm of negative posts about a launch filed as a flag of its own
  (a pseudo-post of source ``event:<name>``; its SQL is in ``monitor/store/storms.py``).
* ``themes``: what people are unhappy about, the launch's complaints grouped by topic.
* ``report``: ``monitor backlash EVENT``, the days before a launch against the days after
  (templates in ``templates/``).
"""
