"""Hypothesis profiles of the fuzzers: `ci` (what `make test` runs: seeded, derandomized, small) and `fuzz` (what
`make fuzz` runs: random, many more examples). HYPOTHESIS_PROFILE picks one; `ci` by default."""

import os

from hypothesis import HealthCheck, settings

COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
          "database": None}
settings.register_profile("ci", max_examples=200, derandomize=True, **COMMON)
settings.register_profile("fuzz", max_examples=3000, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
