"""Chapter 05's inpainting demo, driven through its callback, slider and menu, without a browser."""
import base64

import pytest
import torch

from genai_helpers import restore, widgets
from genai_helpers import vae as vae_mod


@pytest.fixture(scope="module")
def demo():
    torch.manual_seed(0)
    model = vae_mod.VAE(16).eval()  # untrained: the demo's plumbing does not depend on the weights
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(6, 1, 28, 28, generator=g) > 0.7).float()
    train = (torch.rand(30, 1, 28, 28, generator=g) > 0.7).float()
    return widgets.inpainting_demo(model, images, train, steps=5)


def test_callback_changes_the_picture_fast_and_keeps_observed_pixels(demo):
    before = demo.picture.value
    result = demo.show(3, "bottom half")
    assert demo.picture.value != before and demo.picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result) == {"vae", "nearest"} and f"{result['vae']:.1f} dB" in demo.label.value
    assert demo.stopwatch.last_ms < 200, f"the callback took {demo.stopwatch.last_ms:.0f} ms"
    t = demo.table["bottom half"]
    assert torch.equal(t["mask"][3], restore.half_mask("bottom")[None])
    seen = ~t["mask"]
    for kind in ("vae", "nearest"):  # a repair never changes a pixel that was observed
        assert torch.equal(t[kind][seen], demo.images[seen])


def test_slider_and_menu_drive_the_callback(demo):
    before = demo.picture.value
    demo.slider.value = 5
    assert demo.picture.value != before
    before = demo.picture.value
    demo.menu.value = "random 75%"
    assert demo.picture.value != before and "VAE" in demo.label.value
    assert demo.stopwatch.last_ms < 200


def test_bad_input_is_a_message_in_the_widget(demo):
    for index, kind in [(-1, "square"), (6, "square"), ("3", "square"), (None, "square"), (1.5, "square"),
                        (True, "square"), (0, "circle"), (0, None)]:
        assert demo.show(index, kind) is None
        assert demo.label.value.startswith("⚠")


def test_bad_images_are_refused_with_advice():
    with pytest.raises(ValueError, match="test digits"):
        widgets.inpainting_demo(vae_mod.VAE(16), torch.zeros(3, 28, 28), torch.zeros(5, 1, 28, 28))


def test_static_fallback_is_a_png(demo):
    bundle = demo._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"
