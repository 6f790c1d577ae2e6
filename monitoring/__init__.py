"""Monitoring: health checks, the templates' reports and Prometheus exposition."""
