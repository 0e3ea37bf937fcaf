import sys

from experiments.score_sde_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
