"""course_utils: the tested helper package behind the self-supervised learning course.

Modules (each readable in one sitting):

runtime      device, seeding, run profiles, timers     data         image data sets, batches
shapes       the embedded procedural image data set    datasets_io  CIFAR-10/STL-10 on disk, downloads
augment      batched augmentations                     models       encoders and heads
losses       the loss functions                        train        one loop for every method
methods      one module per method on one contract (methods.base.Method: training_step(batch),
             save/load), with the shared heads and momentum networks
lessons      lesson code: the runner every notebook uses (lessons.common: prepare, run) and
             one module of demos and figures per notebook (lessons.nb01, nb07, nb08)
infonce      notebook 02: NCE, InfoNCE, the MI bound   evaluate     features, kNN, linear probe
protocols    notebook 08: fine-tuning, few labels, the pitfalls of frozen evaluation
             (its lesson code, the encoders to compare and the figures: lessons.nb08)
text         corpora and the character tokenizer      language     notebook 07: MLM and CLM
plots        the figures                               widgets      sliders that degrade gracefully
checks       feedback for the exercises, one module per part of the course
colab        the Colab badge and set-up cell
"""
from .runtime import get_device, get_profile, runs_dir, seed_everything, setup

__all__ = ["setup", "get_device", "get_profile", "seed_everything", "runs_dir"]
__version__ = "0.1.0"
