"""Suite-wide settings: hypothesis bounded so the whole run stays within CI's budget."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")
