"""flowcli.recipe: recipes as data (validation, round trips, overrides) and the CPU part they run."""
import numpy as np
import pytest

from flowcli.recipe import PLAIN, Recipe, resolve_recipe
from tests.support import textured_image


def test_round_trip_through_plain_values():
    r = Recipe(scales=(1, 0.25), fusion={"aggregate": 15}, refine={"fixed_point_iterations": 15}, name="default")
    d = r.to_dict()
    assert d == {"name": "default", "scales": [1.0, 0.25], "fusion": {"aggregate": 15},
                 "refine": {"fixed_point_iterations": 15}}
    assert Recipe.from_dict(d) == r
    assert Recipe.from_dict(PLAIN.to_dict()) == PLAIN and PLAIN.is_plain


@pytest.mark.parametrize("bad, match", [((), "at least one scale"), ((1, 1), "must differ"), ((1, 8), r"\[0.0625, 4\]"),
                                        (("x",), "must be numbers"), ((float("nan"),), r"\[0.0625, 4\]")])
def test_scales_are_checked(bad, match):
    with pytest.raises(ValueError, match=match):
        Recipe(scales=bad)


def test_unknown_settings_and_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown recipe setting.*octave"):
        Recipe.from_dict({"scales": [1], "octave": 3})
    with pytest.raises(ValueError, match="recipe must be"):
        resolve_recipe(3, PLAIN)


def test_resolve_and_overrides():
    default = Recipe(scales=(1, 0.25), refine={"fixed_point_iterations": 15}, name="default")
    assert resolve_recipe(None, default) is default and resolve_recipe("default", default) is default
    assert resolve_recipe("plain", default) is PLAIN
    off = default.with_overrides(refine=False)
    assert off.refine is None and off.scales == (1, 0.25)
    assert off.with_overrides(refine=True).refine == {}  # switched on: the refinement's own defaults
    assert default.with_overrides(refine=True) is default  # already on: unchanged
    assert default.with_overrides(scales=(1, 0.5)).scales == (1, 0.5)
    assert default.scaled(2).scales == (2, 0.5) and default.scaled(1) is default


def test_plain_finish_returns_the_network_flow_and_checks_the_count():
    img = textured_image(40, 48, 1)
    flow = np.random.default_rng(0).normal(size=(40, 48, 2)).astype(np.float32)
    np.testing.assert_array_equal(PLAIN.finish(img, img, [flow]), flow)
    with pytest.raises(ValueError, match="1 scales, got 2 candidate"):
        PLAIN.finish(img, img, [flow, flow])


def test_finish_fuses_then_refines_a_known_shift():
    """Candidates: the true shift and a wrong one; fusion must keep the true one, refinement must not spoil it."""
    base = textured_image(72, 96 + 4, 3)
    img1, img2 = base[:, 4:], base[:, :-4]  # img2[y, x + 4] = img1[y, x]
    true = np.zeros((72, 96, 2), np.float32)
    true[..., 0] = 4.0
    wrong = true + np.float32(3.0)
    r = Recipe(scales=(1, 0.5), refine={})
    flow = r.finish(img1, img2, [wrong, true])
    inner = np.abs(flow - true)[12:-12, 12:-12].sum(-1)
    assert np.median(inner) < 0.1 and inner.mean() < 0.5
