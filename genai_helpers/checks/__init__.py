"""Exercise checkers: run a student's function on several cases and say, in plain words, what is
wrong (wrong sign, mean instead of sum, transposed shape, ...), never a bare AssertionError.

Every checker prints a verdict. When something fails it raises `CheckFailed`, whose traceback
in Jupyter is just the verdict, so "Run all" stops at the first unfinished exercise. One module
per chapter; `gh.checks.check_...` reaches all of them."""
from .framework import CheckFailed, Report, call, compare
from .warmup import (
    check_to_unit)
from .mathematics import (
    check_attention, check_elbo_estimate, check_gan_value, check_kl_normal, check_score_function_grad)
from .vae import (
    check_decoder, check_encoder, check_kl, check_neg_elbo, check_reconstruction, check_reparameterize,
    check_vae_step)
from .gans import (
    check_dcgan_discriminator, check_dcgan_generator, check_discriminator_step, check_frechet_distance,
    check_gan_step, check_generator_step, check_high_quality_counts, check_nonsaturating_loss)
from .seq2seq import (
    check_additive_scores, check_attend, check_attention_decoder, check_beam_step, check_exact_match,
    check_greedy_decode, check_masked_loss, check_train_step)
from .applications import (
    check_accuracy_per_class, check_conditional_vae, check_cvae_step, check_downsample, check_draw,
    check_keep_observed, check_masked_psnr, check_one_hot)
from .evaluation import (
    check_knn_precision, check_linear_flops, check_membership_attack, check_membership_auc, check_nn_gap)

__all__ = [
    "CheckFailed", "Report", "call", "compare", "check_to_unit", "check_attention", "check_elbo_estimate",
    "check_gan_value", "check_kl_normal", "check_score_function_grad", "check_decoder", "check_encoder",
    "check_kl", "check_neg_elbo", "check_reconstruction", "check_reparameterize", "check_vae_step",
    "check_dcgan_discriminator", "check_dcgan_generator", "check_discriminator_step", "check_frechet_distance",
    "check_gan_step", "check_generator_step", "check_high_quality_counts", "check_nonsaturating_loss",
    "check_additive_scores", "check_attend", "check_attention_decoder", "check_beam_step", "check_exact_match",
    "check_greedy_decode", "check_masked_loss", "check_train_step", "check_accuracy_per_class",
    "check_conditional_vae", "check_cvae_step", "check_downsample", "check_draw", "check_keep_observed",
    "check_masked_psnr", "check_one_hot", "check_knn_precision", "check_linear_flops", "check_membership_attack",
    "check_membership_auc", "check_nn_gap"
]
