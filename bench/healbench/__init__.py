"""The healing benchmark's parts: streams, peers, the replay through heald's loop, faults and the report.

``bench/healing.py`` is the command; these modules are what it is made of, each with one job.
"""
