"""Code every bundled handler shares; no handler lives here.

The whole ``lambda/`` folder is the task root of every bundled function, so the handler packages
import this as ``_shared.<module>`` in Lambda, in local mode and in ``tests/lambda`` alike.
"""
