import sys

from experiments.gated_pixelcnn_cifar10.config import CONFIGS
from experiments.recipe import main

sys.exit(main(CONFIGS))
