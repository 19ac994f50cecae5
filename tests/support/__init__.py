"""Helpers the tests share: plain functions and classes. Fixtures live in tests/conftest.py.

tests/ is on sys.path while pytest runs (its conftest.py puts it there), so a test imports
these as `from support.waiting import wait_for`."""
