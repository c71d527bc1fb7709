"""Feedback for the exercises: each check runs a learner's function against the package's
tested one, case by case, and prints what differs.

    from course_utils.checks import check_nt_xent
    check_nt_xent(my_nt_xent)

core          Case, CheckReport, check_function: how a check is built
pretext_eval  notebooks 01 and 08: rotate_batch, label_subset, knn_predict
contrastive   notebooks 02-04: nt_xent, supcon, enqueue
byol_mae      notebooks 05-06: update_momentum, regression_loss, random_masking, patchify
language      notebook 07: sequence_log_likelihood, mlm_corrupt
redundancy    notebook 09: covariance_term, barlow_twins_loss
clustering    notebook 10: sinkhorn, teacher_probs
views         notebook 11: clip_loss, zero_shot_classifier
"""
from .byol_mae import check_patchify, check_random_masking, check_regression_loss, check_update_momentum
from .clustering import check_sinkhorn, check_teacher_probs
from .contrastive import check_enqueue, check_nt_xent, check_supcon
from .core import Case, CheckReport, check_function, compare
from .language import check_mlm_corrupt, check_sequence_log_likelihood
from .redundancy import check_barlow_twins_loss, check_covariance_term
from .pretext_eval import check_knn_predict, check_label_subset, check_rotate_batch
from .views import check_clip_loss, check_zero_shot_classifier

__all__ = ["Case", "CheckReport", "check_function", "compare", "check_enqueue", "check_knn_predict",
           "check_label_subset", "check_mlm_corrupt", "check_nt_xent", "check_patchify", "check_random_masking",
           "check_regression_loss", "check_rotate_batch", "check_sequence_log_likelihood", "check_supcon",
           "check_update_momentum", "check_sinkhorn", "check_teacher_probs", "check_clip_loss", "check_zero_shot_classifier",
           "check_covariance_term", "check_barlow_twins_loss"]
