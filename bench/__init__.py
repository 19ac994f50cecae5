"""Benchmarks: how fast, how light, how few Alma calls (issue 8).

`python -m bench` runs every measurement against real processes (the sandbox, `patronpay
serve`, and a bare baseline app) on loopback, prints tables and writes JSON. The figures are
for reading, never pass/fail: timing decides no test.
"""
