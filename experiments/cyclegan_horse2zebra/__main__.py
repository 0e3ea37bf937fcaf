import sys

from experiments.cyclegan_horse2zebra.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
