import sys

from experiments.dcgan_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
