"""Chapter 01's KL widget: driven through its callback, sliders and buttons, without a browser."""
import base64

import torch
from torch.distributions import Normal

from genai_helpers import maths, widgets

TARGET = maths.mixture([0.5, 0.5], [-2.0, 2.0], [0.6, 0.6])


def make():
    return widgets.kl_explorer(TARGET, fits={"forward-KL fit": (0.0, 2.1), "reverse-KL fit": (2.0, 0.6)})


def test_callback_returns_both_kls_and_redraws():
    demo = make()
    image, label = demo.children[0].children[1], demo.children[1]
    before = image.value
    fwd, rev = demo.show(2.0, 0.6)
    x = torch.linspace(-6, 6, 801, dtype=torch.float64)
    log_q = Normal(torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64)).log_prob(x)
    log_p = TARGET.log_prob(x)
    assert abs(fwd - maths.kl_on_grid(log_p, log_q, x).item()) < 1e-12
    assert abs(rev - maths.kl_on_grid(log_q, log_p, x).item()) < 1e-12
    assert fwd > 5 and abs(rev - 0.693) < 0.01  # on one mode: the forward KL is large, the reverse log 2
    assert image.value != before and image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{rev:.3f}" in label.value


def test_sliders_and_buttons_drive_the_same_callback():
    demo = make()
    s_mu, s_sigma = demo.sliders
    s_mu.value = -1.0
    assert "N(-1.00, 1.00²)" in demo.children[1].value
    demo.buttons[1].click()
    assert (s_mu.value, s_sigma.value) == (2.0, 0.6)
    assert "N(+2.00, 0.60²)" in demo.children[1].value


def test_bad_input_is_a_message_in_the_widget():
    demo = make()
    for mu, sigma in [(0.0, -1.0), (0.0, 0.0), (float("nan"), 1.0), ("a", 1.0), (None, 1.0)]:
        assert demo.show(mu, sigma) is None
        assert demo.children[1].value.startswith("⚠")


def test_static_fallback_is_a_png():
    bundle = make()._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"
