"""One training loop for every model: state, step, optimizers, checkpoints."""

from gm_jax.train.checkpoint import Checkpointer
from gm_jax.train.config import TrainConfig
from gm_jax.train.loop import TrainingDiverged, eval_variables, evaluation, fit, restore_state
from gm_jax.train.optim import learning_rate_schedule, make_optimizer
from gm_jax.train.step import TrainState, init_train_state, make_train_step

__all__ = ["Checkpointer", "TrainConfig", "TrainState", "TrainingDiverged", "eval_variables", "evaluation",
           "fit", "init_train_state", "learning_rate_schedule", "make_optimizer", "make_train_step",
           "restore_state"]
