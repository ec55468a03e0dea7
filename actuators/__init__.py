"""Execute (the E of MAPE-K): actuators carry out the remedies the planner chose.

Each has one method, ``execute(action, ctx) -> Outcome``. They run in the worker pool, never in the loop's
own thread, after the action was journaled; they never import sensors or the daemon.
"""
