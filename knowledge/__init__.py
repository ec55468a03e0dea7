"""Knowledge (the K of MAPE-K): the shared memory every stage of the loop reads and writes.

It holds the model registry (versions, artifacts, aliases and their history), every observation, symptom,
incident and action, and the value types the other packages exchange. It imports nothing else of heald.
"""
