import sys

from experiments.iwae_mnist.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
