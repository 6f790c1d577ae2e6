"""Test support shipped with coordhub, as `django.test` is with Django.

`services` starts throwaway PostgreSQL and Redis servers, `processes` starts
coordhub's own processes (web servers and workers), and `environment` builds
the environment those children run with. The suite under `tests/` and the
benchmarks under `bench/` both use them; nothing here is imported by coordhub
itself.
"""
