"""``python -m gm_jax.cli``: the ``gm-jax`` command."""

import sys

from gm_jax.cli import main

sys.exit(main())
