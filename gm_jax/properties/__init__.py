"""The families' property table, measured: every family trained on the same data by one trainer and
measured by one evaluator (``gm-jax properties``; :func:`run_properties`)."""

from gm_jax.properties.config import CONFIGS, PropertiesConfig
from gm_jax.properties.families import FAMILIES, PROPERTIES, Family
from gm_jax.properties.protocol import RESULTS_FILE, run_properties

__all__ = ["CONFIGS", "PropertiesConfig", "FAMILIES", "PROPERTIES", "Family", "RESULTS_FILE", "run_properties"]
