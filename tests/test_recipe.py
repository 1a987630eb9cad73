"""flowcli.recipe: recipes as data (validation with bounds, round trips, overrides, the older form) and the CPU part
they run (classical candidates, selection, refinement)."""
import numpy as np
import pytest

from flowcli.recipe import PLAIN, Recipe, bounded, parse_candidate, resolve_recipe
from tests.support import textured_image


def shifted_pair(h=72, w=96, dx=4, seed=3):
    """Frames with ``img2[y, x + dx] = img1[y, x]`` and the true flow (dx, 0)."""
    base = textured_image(h, w + dx, seed)
    img1, img2 = base[:, dx:], base[:, :-dx]
    true = np.zeros((h, w, 2), np.float32)
    true[..., 0] = dx
    return img1, img2, true


def test_round_trip_through_plain_values():
    r = Recipe(candidates=("net@1", "net@0.25", "dis"), selection={"method": "census", "aggregate": 15},
               refine={"fixed_point_iterations": 15}, bf16=True, name="default")
    d = r.to_dict()
    assert d == {"name": "default", "candidates": ["net@1", "net@0.25", "dis"],
                 "selection": {"method": "census", "aggregate": 15}, "refine": {"fixed_point_iterations": 15},
                 "bf16": True}
    assert Recipe.from_dict(d) == r
    assert Recipe.from_dict(PLAIN.to_dict()) == PLAIN and PLAIN.is_plain


def test_the_older_form_reads_as_network_candidates_and_census_selection():
    r = Recipe.from_dict({"name": "default", "scales": [1, 0.25], "fusion": {"vote": 7},
                          "refine": {"fixed_point_iterations": 15}})
    assert r.candidates == ("net@1", "net@0.25") and r.selection == {"method": "census", "vote": 7}
    assert r.scales == (1.0, 0.25) and not r.bf16


@pytest.mark.parametrize("spec, kind, scale, base", [("net@1", "net", 1.0, None), ("net@0.25", "net", 0.25, None),
                                                     ("net@0.5:large", "net", 0.5, None),
                                                     ("cascade@0.25", "cascade", 1.0, 0.25),
                                                     ("cascade@0.25/0.5", "cascade", 0.5, 0.25),
                                                     ("dis", "dis", None, None), ("deepflow", "deepflow", None, None)])
def test_candidate_specs_parse_and_print_back(spec, kind, scale, base):
    c = parse_candidate(spec)
    assert c.kind == kind and c.spec == spec
    if scale is not None:
        assert c.scale == scale
    if base is not None:
        assert c.base == base


@pytest.mark.parametrize("candidates, match", [
    ((), "1 to 8 candidates"), (("net@1", "net@1"), "must differ"), (("net@8",), r"\[0.0625, 4\]"),
    (("net@x",), "must be numbers"), (("net@nan",), r"\[0.0625, 4\]"), (("farneback",), "unknown recipe candidate"),
    (("cascade@",), "unknown recipe candidate"), (("dis@2",), "unknown recipe candidate"), ((3,), "short string"),
    (("net@0.5:",), "a weight set is named by"), (("net@0.5:Big",), "got 'Big'"), (("dis:large",), "unknown"),
    (("cascade@0.25:large",), "must be numbers"), (("net@1:large", "net@1:large"), "must differ"),
    ("net@1", "list of specs"), (tuple(f"net@{1 + i / 10}" for i in range(9)), "1 to 8 candidates")])
def test_candidates_are_checked(candidates, match):
    with pytest.raises(ValueError, match=match):
        Recipe(candidates=candidates)


@pytest.mark.parametrize("d, match", [
    ({"scales": [1e6]}, r"scales must be in \[0.0625, 4\], got 1e\+06"),
    ({"scales": [0]}, r"must be in \[0.0625, 4\]"),
    ({"scales": "1"}, "list of numbers"),
    ({"candidates": ["net@1"], "scales": [1]}, "either candidates or scales"),
    ({"refine": {"fixed_point_iterations": -1}}, r"fixed_point_iterations must be an integer in \[1, 200\]"),
    ({"refine": {"octaves": 2.5}}, "octaves must be an integer"),
    ({"refine": {"omega": 2.5}}, "omega"),
    ({"refine": {"alpha": float("inf")}}, "alpha"),
    ({"refine": {"typo": 1}}, "unknown refinement setting"),
    ({"refine": "fast"}, "refinement must be a mapping"),
    ({"selection": {"method": "magic"}}, "census' or 'learned'"),
    ({"selection": {"method": "census", "window": 8}}, "window must be odd"),
    ({"selection": {"method": "census", "aggregate": 10 ** 9}}, "aggregate must be an integer"),
    ({"selection": {"method": "learned", "w1": [[1.0]]}}, "selection lacks"),
    ({"fusion": [1, 2]}, "fusion must be a mapping"),
    ({"bf16": "yes"}, "bf16 must be true or false"),
    ({"octave": 3}, "unknown recipe setting.*octave"),
    ("net@1", "must be a mapping of settings, got str"),
    (["net@1"], "must be a mapping of settings, got list"),
])
def test_recipe_data_is_checked_with_bounds(d, match):
    with pytest.raises(ValueError, match=match):
        Recipe.from_dict(d)


def test_deep_or_huge_structures_are_refused_before_they_are_walked():
    deep = {}
    node = deep
    for _ in range(10_000):  # far beyond Python's recursion limit
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ValueError, match="nested deeper than"):
        Recipe.from_dict({"refine": deep})
    with pytest.raises(ValueError, match="more than"):
        Recipe.from_dict({"candidates": ["net@1"] * 10 ** 6})
    with pytest.raises(ValueError, match="type object"):
        bounded({"x": object()})


def test_resolve_presets_and_overrides():
    default = Recipe(candidates=("net@1", "net@0.25", "dis"), refine={"fixed_point_iterations": 15}, name="default")
    fast = Recipe(candidates=("net@1", "dis"), refine={}, name="fast")
    assert resolve_recipe(None, default) is default and resolve_recipe("default", default) is default
    assert resolve_recipe("plain", default) is PLAIN
    assert resolve_recipe("fast", default, {"fast": fast}) is fast
    with pytest.raises(ValueError, match="no 'quality' recipe; they have default, plain, fast"):
        resolve_recipe("quality", default, {"fast": fast})
    with pytest.raises(ValueError, match="recipe must be one of"):
        resolve_recipe(3, PLAIN)
    off = default.with_overrides(refine=False)
    assert off.refine is None and off.candidates == default.candidates
    assert off.with_overrides(refine=True).refine == {}  # switched on: the refinement's own defaults
    assert default.with_overrides(refine=True) is default  # already on: unchanged
    # --scales replaces the network candidates and keeps the others
    assert default.with_overrides(scales=(1, 0.5)).candidates == ("net@1", "net@0.5", "dis")
    assert default.with_overrides(candidates=("dis",)).candidates == ("dis",)
    assert default.scaled(2).candidates == ("net@2", "net@0.5", "dis") and default.scaled(1) is default
    assert Recipe(candidates=("cascade@0.25/0.5",)).scaled(2).candidates == ("cascade@0.5",)


def test_candidates_may_name_a_weight_set_of_the_checkpoint():
    r = Recipe(candidates=("net@1", "net@0.5:large", "net@0.25:large", "dis"))
    assert r.weight_sets == ("large",) and r.scales == (1.0,)  # the main weights' scales
    assert [c.weights for c in r.network_candidates] == ["", "large", "large"]
    assert Recipe.from_dict(r.to_dict()).candidates == r.candidates
    assert r.scaled(2).candidates == ("net@2", "net@1:large", "net@0.5:large", "dis")
    # --scales replaces the main weights' network candidates; those of a weight set stay, as the classical ones do
    assert r.with_overrides(scales=(1, 0.5)).candidates == ("net@1", "net@0.5", "net@0.5:large", "net@0.25:large",
                                                             "dis")
    assert Recipe(candidates=("net@1:large", "net@1")).parsed[0].selector_kind == "net"


def test_plain_finish_returns_the_network_flow_and_checks_the_count():
    img = textured_image(40, 48, 1)
    flow = np.random.default_rng(0).normal(size=(40, 48, 2)).astype(np.float32)
    np.testing.assert_array_equal(PLAIN.finish(img, img, [flow]), flow)
    with pytest.raises(ValueError, match="1 network candidates, got 2 flows"):
        PLAIN.finish(img, img, [flow, flow])


@pytest.mark.parametrize("true_first", [True, False])
def test_finish_selects_then_refines_a_known_shift(true_first):
    """Candidates: the true shift and a wrong one, in either order; the selection must keep the true one wherever it
    is (a finish that took the first or the last candidate fails one of the two orders), and refinement must not
    spoil it."""
    img1, img2, true = shifted_pair()
    wrong = true + np.float32(3.0)
    r = Recipe(candidates=("net@1", "net@0.5"), refine={})
    flow = r.finish(img1, img2, [true, wrong] if true_first else [wrong, true])
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(flow[inner] - true[inner]).max() < 0.25


def test_finish_computes_the_classical_candidates_itself():
    """A recipe of DIS alone needs no network flow: its finish is DIS's flow of the known shift."""
    img1, img2, true = shifted_pair(96, 128, dx=3)
    flow = Recipe(candidates=("dis",)).finish(img1, img2, [])
    inner = (slice(12, -12), slice(12, -12))
    assert np.median(np.abs(flow[inner] - true[inner])) < 0.2


def test_the_bundled_selection_takes_a_large_motion_from_the_coarse_candidate():
    """A square moving 40 px over a still background; the full-scale candidate has it still (what the network misses
    beyond its range), the quarter-scale one has it right. The bundled recipe's learned selection must take the square
    from the coarse candidate and the background from either."""
    from flowcli.weights import bundled_entries, load_checkpoint

    if not bundled_entries()[0].path.exists():
        pytest.skip("no bundled weights in this checkout")
    recipe = load_checkpoint().recipe
    assert recipe.candidates[:2] == ("net@1", "net@0.25") and recipe.selection["method"] == "learned"
    h, w, shift = 160, 224, 40
    bg, fg = textured_image(h, w, 11), textured_image(h, w, 12)
    img1, img2 = bg.copy(), bg.copy()
    img1[48:112, 48:112] = fg[48:112, 48:112]
    img2[48:112, 48 + shift:112 + shift] = fg[48:112, 48:112]
    true = np.zeros((h, w, 2), np.float32)
    true[48:112, 48:112, 0] = shift
    still = np.zeros_like(true)
    flows = recipe.all_candidates(img1, img2, [still, true])
    flow, choice = recipe.select(img1, img2, flows)
    square = (slice(56, 104), slice(56, 104))
    assert (choice[square] == 1).mean() > 0.9
    assert np.hypot(*(flow[square] - true[square]).transpose(2, 0, 1)).mean() < 1.0
    background = (slice(0, 40), slice(0, w))
    assert np.hypot(*(flow[background] - true[background]).transpose(2, 0, 1)).mean() < 0.5


def test_alignment_settings_are_checked_and_carried_only_where_set():
    r = Recipe(candidates=("net@1", "dis"), align={"min_shift": 24, "min_gain": 0.25}, name="default")
    assert Recipe.from_dict(r.to_dict()) == r and r.to_dict()["align"] == {"min_shift": 24.0, "min_gain": 0.25}
    assert "align" not in Recipe(candidates=("net@1",)).to_dict()  # recipes without it keep their old form
    assert r.describe().startswith("default: net@1, dis; pans of 24+ px taken out first; census selection")
    for bad, match in (({"min_shift": -1}, "min_shift must be a number in"), ({"width": 8}, "width must be an integer"),
                       ({"pan": 1}, "unknown alignment setting"), ([24], "must be a mapping")):
        with pytest.raises(ValueError, match=match):
            Recipe(align=bad)


def test_prepare_takes_a_pan_out_and_finish_adds_it_back():
    from tests.postprocess.test_align import pan

    img1, img2 = pan(-60, 20)
    plain = Recipe(candidates=("net@1",))
    assert plain.prepare(img1, img2)[0] is img2 and plain.prepare(img1, img2)[1] == (0, 0)
    r = Recipe(candidates=("net@1",), align={})
    moved, (dx, dy) = r.prepare(img1, img2)
    assert abs(dx + 60) <= 1 and abs(dy - 20) <= 1
    residual = np.zeros(img1.shape[:2] + (2,), np.float32)
    flow = r.finish(img1, moved, [residual], (dx, dy))
    assert (flow[..., 0] == dx).all() and (flow[..., 1] == dy).all()
