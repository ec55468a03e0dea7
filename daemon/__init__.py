"""The daemon: the MAPE-K loop with its Analyze and Plan stages, config, logs, CLI, HTTP API and systemd glue.

It is the composition root: it builds the sensors, actuators, knowledge store and pipeline from the
config and drives them tick by tick.
"""
