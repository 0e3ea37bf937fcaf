import sys

from experiments.pixelcnn_pp_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
