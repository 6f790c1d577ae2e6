"""The HTTP layer: the JSON API, and what every request passes through once."""
