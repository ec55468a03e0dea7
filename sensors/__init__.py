"""Monitor (the M of MAPE-K): sensors read the world and return observations.

Each sensor has one method, ``sense(ctx) -> list[Observation]``; the loop stores whatever they return.
Sensors never act and never import actuators or the daemon.
"""
