"""course_utils: the tested helper package behind the self-supervised learning course.

Modules (each readable in one sitting):

runtime   device, seeding, run profiles, timers          data      image data sets, batches
shapes    the embedded procedural image data set         augment   batched augmentations
models    encoders and heads                             losses    the loss functions
methods   one module per method (a training_step each)   train     one loop for every method
evaluate  features, kNN, linear probe                    plots     the figures
"""
from .runtime import get_device, get_profile, runs_dir, seed_everything, setup

__all__ = ["setup", "get_device", "get_profile", "seed_everything", "runs_dir"]
__version__ = "0.1.0"
