import sys

from experiments.sngan_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
