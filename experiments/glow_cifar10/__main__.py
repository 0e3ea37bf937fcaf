import sys

from experiments.glow_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
