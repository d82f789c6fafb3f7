"""Chapter 05's repair and conditional-model functions on hand-built cases."""
import pytest
import torch

from genai_helpers import conditional, metrics, restore
from genai_helpers import vae as vae_mod


def test_square_and_half_masks_have_the_right_area_and_place():
    m = restore.square_mask(2, 3, 4, size=10)
    assert m.shape == (10, 10) and m.sum() == 16 and m[2, 3] and m[5, 6] and not m[6, 6] and not m[2, 2]
    assert restore.square_mask(8, 8, 4, size=10).sum() == 4  # cut off at the border
    for which, rows, cols in [("top", slice(0, 14), slice(None)), ("right", slice(None), slice(14, None))]:
        h = restore.half_mask(which)
        assert h.sum() == 28 * 14 and h[rows, cols].all()


def test_make_masks_shapes_areas_and_reproducibility():
    for kind, area in [("square", 144), ("bottom half", 392), ("right half", 392)]:
        m = restore.make_masks(kind, 5)
        assert m.shape == (5, 1, 28, 28) and m.dtype == torch.bool
        assert (m.flatten(1).sum(1) == area).all()
    r = restore.make_masks("random 75%", 200)
    assert abs(r.float().mean().item() - 0.75) < 0.01
    assert torch.equal(r, restore.make_masks("random 75%", 200))  # same default seed, same masks


@pytest.mark.parametrize("kind", ["circle", "random", "half"])
def test_unknown_mask_kind_says_what_exists(kind):
    with pytest.raises(ValueError, match="square"):
        restore.make_masks(kind, 2)


def test_keep_observed_takes_the_guess_only_where_missing():
    mask = torch.tensor([[True, False], [False, True]])
    out = restore.keep_observed(torch.full((2, 2), 9.0), torch.tensor([[0.0, 1.0], [2.0, 0.0]]), mask)
    assert torch.equal(out, torch.tensor([[9.0, 1.0], [2.0, 9.0]]))


@pytest.fixture(scope="module")
def case():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=g)
    masks = restore.make_masks("square", 4)
    train = torch.rand(20, 1, 28, 28, generator=g)
    return x, masks, train


def test_baselines_keep_observed_pixels_and_fill_the_rest(case):
    x, masks, train = case
    observed = x * ~masks
    mean = train.mean(0)
    filled = restore.fill_mean(observed, masks, mean)
    assert torch.equal(filled[~masks], x[~masks])
    assert torch.equal(filled[masks], mean.expand_as(x)[masks])
    nearest = restore.fill_nearest(observed, masks, train)
    assert torch.equal(nearest[~masks], x[~masks])


def test_nearest_neighbour_finds_a_training_digit_from_its_visible_half():
    g = torch.Generator().manual_seed(1)
    train = torch.rand(10, 1, 28, 28, generator=g)
    masks = restore.make_masks("bottom half", 1)
    out = restore.fill_nearest(train[6:7] * ~masks, masks, train)
    assert torch.equal(out, train[6:7])  # the hidden half comes back exactly


def test_vae_inpainting_keeps_observed_pixels_exactly(case):
    x, masks, _ = case
    torch.manual_seed(0)
    vae = vae_mod.VAE(16).eval()
    observed = x * ~masks
    for out in (restore.inpaint_iterate(vae, observed, masks, steps=3),
                restore.inpaint_latent(vae, observed, masks, steps=3)):
        assert out.shape == x.shape and torch.equal(out[~masks], x[~masks])
        assert ((out >= 0) & (out <= 1)).all()


def test_latent_fit_lowers_its_objective():
    torch.manual_seed(0)
    vae = vae_mod.VAE(16).eval()
    target = torch.rand(2, 1, 28, 28)

    def loss(logits):
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)

    def total(z):
        with torch.no_grad():
            return (loss(vae.decode(z)) + 0.5 * z.pow(2).sum(1)).sum().item()

    z0 = torch.zeros(2, 16)
    assert total(restore.fit_latent(vae.decode, z0, loss, steps=20, lr=0.05)) < total(z0)


def test_downsample_and_bicubic_shapes_and_values():
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 2:4, 4:6] = 1.0
    low = restore.downsample(x)
    assert low.shape == (1, 1, 14, 14) and low[0, 0, 1, 2] == 1.0 and low.sum() == 1.0
    up = restore.upsample_bicubic(low)
    assert up.shape == (1, 1, 28, 28) and up.min() >= 0 and up.max() <= 1
    grey = torch.full((1, 1, 28, 28), 0.5)
    assert metrics.psnr(restore.upsample_bicubic(restore.downsample(grey)), grey) > 100


@pytest.mark.parametrize("observed, mask, words", [
    (torch.zeros(2, 28, 28), torch.zeros(2, 28, 28, dtype=torch.bool), "observed must be images"),
    ([[0.0]], torch.zeros(1, 1, 28, 28, dtype=torch.bool), "observed must be images"),
    (torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 28, 28), "mask must be a bool tensor"),
    (torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28, dtype=torch.bool), "hides every pixel"),
])
def test_bad_input_gets_a_message(observed, mask, words):
    with pytest.raises(ValueError, match=words):
        restore.fill_mean(observed, mask, torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match=words):
        restore.inpaint_iterate(vae_mod.VAE(16), observed, mask)


def test_super_resolve_refuses_images_that_are_not_low_resolution():
    for low in (torch.zeros(1, 1, 28, 28 + 1), torch.zeros(1, 1, 9, 9), torch.zeros(14, 14), "x"):
        with pytest.raises(ValueError, match="low-resolution"):
            restore.super_resolve(vae_mod.VAE(16), low)


def test_one_hot_and_its_messages():
    assert torch.equal(conditional.one_hot(torch.tensor([2, 0])), torch.eye(10)[[2, 0]])
    with pytest.raises(ValueError, match="integer digits"):
        conditional.one_hot(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="digits 0..9"):
        conditional.one_hot(torch.tensor([3, 10]))


def test_conditional_vae_shapes_labels_and_restyle():
    torch.manual_seed(0)
    model = conditional.ConditionalVAE(4).eval()
    x = torch.rand(3, 1, 28, 28)
    logits, mu, logvar = model(x, torch.tensor([1, 2, 3]))
    assert logits.shape == x.shape and mu.shape == logvar.shape == (3, 4)
    assert model.sample(torch.tensor([7, 7]), torch.Generator().manual_seed(0)).shape == (2, 1, 28, 28)
    assert model.restyle(x, torch.tensor([1, 2, 3]), 5).shape == x.shape  # one label for all
    with pytest.raises(ValueError, match="one label per image"):
        model.decode(torch.zeros(3, 4), torch.tensor([1, 2]))


def test_accuracy_per_class_and_conditional_accuracy_by_hand():
    pred = torch.tensor([1, 1, 2, 3, 3, 3])
    asked = torch.tensor([1, 2, 2, 3, 3, 0])
    acc = conditional.accuracy_per_class(pred, asked)
    assert acc[1] == 1.0 and acc[2] == 0.5 and acc[3] == 1.0 and acc[0] == 0.0 and acc[4:].isnan().all()
    with pytest.raises(ValueError, match="same length"):
        conditional.accuracy_per_class(pred, asked[:3])


def test_slant_and_ink_of_hand_drawn_strokes():
    upright = torch.zeros(1, 28, 28)
    upright[0, 4:24, 13:15] = 1.0
    leaning = torch.zeros(1, 28, 28)
    for r in range(4, 24):  # the stroke moves right as it goes up
        c = 20 - (r - 4) // 2
        leaning[0, r, c:c + 2] = 1.0
    assert abs(conditional.slant(upright).item()) < 1e-9
    assert conditional.slant(leaning).item() > 0.3
    assert conditional.ink(upright).item() == 40.0
