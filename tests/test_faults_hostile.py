"""Hostile input: arbitrary unicode to the date model and the widgets, wrong shapes, dtypes and
devices to the exercise checkers and the models. Nothing raises an uncaught exception: the
checkers answer with a verdict (CheckFailed), the models with a ValueError that says what they
expect, the widgets with a message on the page."""
import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genai_helpers as gh
from genai_helpers import checks
from genai_helpers.checks import CheckFailed
from genai_helpers.dates import DateCorpus

CHECKERS = [f for name, f in inspect.getmembers(checks, inspect.isfunction) if name.startswith("check_")]
FIXTURE_OK = [HealthCheck.function_scoped_fixture]

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
dtypes = st.sampled_from([torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool, torch.float16])
tensors = st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype) if dtype == torch.bool
                    else (torch.rand(shape) * 10 - 5).to(dtype), shapes, dtypes)
junk = (st.none() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10) | tensors
        | st.tuples(tensors, tensors) | st.lists(st.floats(), max_size=3)
        | st.just(torch.tensor(float("nan"))) | st.just(np.zeros((2, 2))))
errors = st.sampled_from([ValueError("bad"), RuntimeError("shape mismatch"), ZeroDivisionError(), KeyError("x"),
                          NotImplementedError("hint"), TypeError("wrong type"), IndexError("out of range")])


def verdict_or_pass(checker, fn):
    try:
        checker(fn)
    except CheckFailed as e:
        assert str(e).strip(), "a failed check must say why"


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda f: f.__name__)
@settings(max_examples=25, deadline=None)
@given(value=junk)
def test_checkers_survive_any_return_value(checker, value):
    verdict_or_pass(checker, lambda *a, **k: value)


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda f: f.__name__)
@settings(max_examples=8, deadline=None)
@given(error=errors, not_a_function=junk)
def test_checkers_survive_crashing_functions_and_non_functions(checker, error, not_a_function):
    def crash(*a, **k):
        raise error

    verdict_or_pass(checker, crash)
    with pytest.raises(CheckFailed):
        checker(not_a_function)


MODELS = {
    "VAE.encode": lambda: gh.vae.VAE(4).encode,
    "VAE.decode": lambda: gh.vae.VAE(4).decode,
    "DCGANGenerator": lambda: gh.gan.DCGANGenerator(8, 4).eval(),
    "DCGANDiscriminator": lambda: gh.gan.DCGANDiscriminator(4),
    "MnistClassifier": lambda: gh.classifier.MnistClassifier(4),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=30, deadline=None)
@given(x=tensors | junk)
def test_models_refuse_wrong_input_with_a_clear_message(name, x):
    model = MODELS[name]()
    try:
        with torch.no_grad():
            model(x)
    except ValueError as e:
        assert "expects" in str(e)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_name_the_device_mismatch(name):
    model = MODELS[name]()
    shape = (2, 4) if name == "VAE.decode" else (2, 8) if name == "DCGANGenerator" else (2, 1, 28, 28)
    with pytest.raises(ValueError, match="is on cpu but the input is on meta"):
        model(torch.zeros(shape, device="meta"))


def test_uint8_images_get_a_hint():
    with pytest.raises(ValueError, match=r"x.float\(\) / 255"):
        gh.vae.VAE(4).encode(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6) | st.text(max_size=5) | st.none()


@settings(max_examples=60, deadline=None)
@given(mu=numbers, sigma=numbers)
def test_kl_widget_answers_anything_with_numbers_or_a_message(mu, sigma):
    demo = kl_demo()
    out = demo.show(mu, sigma)
    if out is None:
        assert "⚠" in demo.label.value
    else:
        assert all(math.isfinite(v) and v >= -1e-9 for v in out)


_KL = {}


def kl_demo():
    if "demo" not in _KL:
        _KL["demo"] = gh.widgets.kl_explorer(gh.maths.mixture(weights=[0.5, 0.5], means=[-2.0, 2.0],
                                                              stds=[0.6, 0.6]))
    return _KL["demo"]


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6) | st.integers(-10**6, 10**6), min_size=5, max_size=5))
def test_gan_walk_keeps_working_whatever_the_sliders_say(values):
    if "walk" not in _KL:
        _KL["walk"] = gh.widgets.latent_walk(gh.gan.DCGANGenerator(8, 4))
    demo = _KL["walk"]
    for slider, v in zip(demo.sliders, values):
        slider.value = type(slider.value)(v) if isinstance(slider.value, int) else float(v)  # clamped
    assert demo.update() is not None and "⚠" not in demo.label.value


unicode_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                              blacklist_categories=()), max_size=80)
# strings of the corpus's own characters reach the model (arbitrary unicode is mostly refused early)
date_like = st.text(alphabet=DateCorpus().characters() + "😀ж\u00a0\t", max_size=45)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURE_OK)
@given(text=unicode_text | date_like | st.sampled_from(["28 nov 2026", "2026年11月28日", "3/4/26"]))
def test_translate_never_raises(untrained, text):
    t = gh.translator.translate(untrained, text)
    assert isinstance(t.message, str)
    assert t.iso is None or (len(t.iso) == 10 and t.iso[4] == "-")
    assert t.iso is not None or t.message  # no date always comes with a reason


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(text=unicode_text | date_like)
def test_date_widget_callback_never_raises(untrained, text):
    from genai_helpers.widgets import date_translator

    demo = date_translator(untrained, examples=("28 nov 2026",))
    t = demo.update(text)
    assert "internal error" not in t.message
    assert demo.result.value
    assert demo._repr_mimebundle_()["image/png"]
