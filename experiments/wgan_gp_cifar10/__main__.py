import sys

from experiments.wgan_gp_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
