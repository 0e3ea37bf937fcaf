import sys

from experiments.realnvp_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
