"""Checkpoint loading: both public key spellings, the project format, refusal of code and of broken files."""
import pickle
import re

import pytest
import torch

from flowcli.model import LiteFlowNet
from flowcli.weights import (CheckpointError, bundled_path, convert_public_checkpoint, internal_to_public,
                             liteflownet, load_checkpoint, read_checkpoint, save_checkpoint)


def load_model(path):
    """(network, checkpoint) for a file, as the estimator loads them."""
    ckpt = load_checkpoint(path)
    return liteflownet(weights=ckpt), ckpt


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    return torch.load(fixtures_dir / "liteflownet_parity_64x96.pt", weights_only=True)


@pytest.fixture
def public_ckpt(tmp_path, fixture):
    path = tmp_path / "network-default.pytorch"
    torch.save(fixture["state_dict"], path)
    return path


def _flow(model, fixture):
    with torch.no_grad():
        return model(fixture["image1_bgr"], fixture["image2_bgr"])


@pytest.mark.parametrize("spelling", ["module", "net"])
def test_public_checkpoint_in_either_spelling(tmp_path, fixture, spelling):
    sd = {k.replace("module", spelling) if spelling == "net" else k: v for k, v in fixture["state_dict"].items()}
    assert any(k.startswith("netFeatures.netOne") for k in sd) == (spelling == "net")
    path = tmp_path / "ckpt.pytorch"
    torch.save(sd, path)
    model, ckpt = load_model(path)
    assert ckpt.kind == "public"
    assert (_flow(model, fixture) - fixture["flow"]).abs().max() < 1e-3


def test_convert_then_load_gives_same_output(tmp_path, public_ckpt, fixture):
    dst = convert_public_checkpoint(public_ckpt, tmp_path / "converted.pt", name="fixture")
    ckpt = read_checkpoint(dst)
    assert ckpt.kind == "flowcli" and ckpt.meta["name"] == "fixture" and "preprocessing" in ckpt.meta
    model, _ = load_model(dst)
    assert (_flow(model, fixture) - fixture["flow"]).abs().max() < 1e-3


def test_fp16_checkpoint_loads_as_float32(tmp_path, fixture):
    sd = {k: v for k, v in LiteFlowNet().state_dict().items()}
    save_checkpoint(tmp_path / "h.pt", sd, {"name": "half"}, half=True)
    raw = torch.load(tmp_path / "h.pt", weights_only=True)
    assert raw["state_dict"]["features.levels.0.0.weight"].dtype == torch.float16
    ckpt = read_checkpoint(tmp_path / "h.pt")
    assert ckpt.state_dict["features.levels.0.0.weight"].dtype == torch.float32


def test_missing_extra_and_misshaped_tensors_are_named(tmp_path, fixture):
    sd = dict(fixture["state_dict"])
    del sd["moduleMatching.0.moduleMain.6.bias"]
    sd["moduleExtra.weight"] = torch.zeros(1)
    sd["moduleSubpixel.4.moduleMain.0.weight"] = torch.zeros(3, 3)
    path = tmp_path / "bad.pytorch"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert "1 missing: matching.0.main.6.bias" in msg
    assert "1 unexpected: moduleExtra.weight" in msg
    assert "1 misshaped: subpixel.4.main.0.weight (3, 3)" in msg


class Payload:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused") as err:
        read_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_empty_and_garbage_files(tmp_path, public_ckpt):
    data = public_ckpt.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "garbage.pt").write_bytes(pickle.dumps([1, 2, 3]) * 3 + b"\x00junk")
    for name in ("trunc.pt", "empty.pt", "garbage.pt"):
        with pytest.raises(CheckpointError) as err:
            load_model(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_checkpoint(tmp_path / "nope.pt")


def test_missing_bundled_weights_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWCLI_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match="no bundled weights"):
        bundled_path()


def test_key_names_round_trip():
    for key in LiteFlowNet().state_dict():
        assert read_key(internal_to_public(key)) == key
        assert read_key(internal_to_public(key, "net")) == key


def read_key(k):
    from flowcli.weights import public_to_internal
    return public_to_internal(k)


def test_recipe_metadata_round_trips_through_a_checkpoint(tmp_path):
    from flowcli.recipe import Recipe

    recipe = Recipe(candidates=("net@1", "net@0.5"), selection={"method": "census", "aggregate": 9},
                    refine={"octaves": 2}, name="default")
    save_checkpoint(tmp_path / "r.pt", LiteFlowNet().state_dict(), {"name": "r", "recipe": recipe.to_dict()})
    ckpt = load_checkpoint(tmp_path / "r.pt")
    assert ckpt.recipe == recipe and ckpt.entry is None
    save_checkpoint(tmp_path / "none.pt", LiteFlowNet().state_dict(), {"name": "none"})
    assert load_checkpoint(tmp_path / "none.pt").recipe.is_plain  # an unknown checkpoint runs the network alone


def test_public_checkpoints_are_known_by_name_and_default_to_the_plain_network(public_ckpt, tmp_path):
    ckpt = load_checkpoint(public_ckpt)
    assert ckpt.kind == "public" and ckpt.entry is not None and ckpt.entry.name == "network-default"
    assert ckpt.recipe.is_plain and ckpt.entry.load_metrics()["sintel_clean_train_aee"] == 2.48
    other = tmp_path / "mine.pytorch"
    other.write_bytes(public_ckpt.read_bytes())
    assert load_checkpoint(other).entry is None and load_checkpoint(other).recipe.is_plain


def test_the_bundled_entry_is_the_bundled_file():
    """The registry's hash pins the entry (its recipe and metrics) to the file it describes."""
    from flowcli.weights import bundled_entries, file_sha256

    entry = bundled_entries()[0]
    assert entry.path.exists() and file_sha256(entry.path) == entry.sha256
    ckpt = load_checkpoint()
    assert ckpt.entry is entry and not ckpt.recipe.is_plain
    assert set(entry.load_metrics()) == {"real", "val", "large"}


# The generated tables each document must hold: the README shows the real pairs, the card the tuning and held-out
# pairs, docs/accuracy.md the large motions.
DOCUMENT_TABLES = {"README.md": ("real",), "weights/MODEL_CARD.md": ("real:groups", "val:groups"),
                   "docs/accuracy.md": ("large",)}


def check_generated_tables(text: str, document: str, names, reports: dict) -> None:
    """``text`` holds, for each of ``names``, exactly one ``<!-- eval:NAME -->`` ... ``<!-- /eval:NAME -->`` block, and
    it is ``reports[NAME]`` rendered: a renamed or missing marker fails, as do edited numbers."""
    from flowcli.jobs.evaluation import markdown_from_report

    for name in names:
        start, end = f"<!-- eval:{name} -->\n", f"<!-- /eval:{name} -->"
        assert text.count(start) == 1 and text.count(end) == 1, f"{document}: needs one {start.strip()} ... {end}"
        assert text.index(start) < text.index(end), f"{document}: {end} before {start.strip()}"
        block = text[text.index(start) + len(start):text.index(end)]
        key, _, option = name.partition(":")  # NAME:groups: the per-group table without the bands
        expected = markdown_from_report(reports[key], compact=True, by_magnitude=option != "groups")
        assert block == expected, f"{document}: run tools/update_docs.py"


@pytest.mark.parametrize("document", sorted(DOCUMENT_TABLES))
def test_documents_hold_the_tables_generated_from_the_measurements(document):
    """The README's and the card's tables are the bundled entry's JSON measurements rendered, not copies."""
    from flowcli.weights import bundled_entries
    from tests.support import REPO

    reports = bundled_entries()[0].load_metrics()
    assert {n.partition(":")[0] for n in DOCUMENT_TABLES[document]} <= set(reports), f"no measurement for {document}"
    check_generated_tables((REPO / document).read_text(encoding="utf-8"), document, DOCUMENT_TABLES[document],
                           reports)


def test_the_documents_check_catches_renamed_markers_and_edited_numbers():
    """What the check above must not let through (the files themselves are left alone): a renamed marker, a
    missing end marker, a number edited inside the table."""
    from flowcli.weights import bundled_entries
    from tests.support import REPO

    reports = bundled_entries()[0].load_metrics()
    text = (REPO / "README.md").read_text(encoding="utf-8")
    check_generated_tables(text, "README.md", ["real"], reports)  # the real one passes
    block_start = text.index("<!-- eval:real -->")
    first_number = re.search(r"\| (\d+\.\d+) \|", text[block_start:])
    at = block_start + first_number.start(1)
    broken = {
        "renamed marker": text.replace("<!-- eval:real -->", "<!-- eval:real-pairs -->"),
        "missing end marker": text.replace("<!-- /eval:real -->", ""),
        "edited number": text[:at] + "0.001" + text[at + len(first_number.group(1)):],
    }
    for what, doc in broken.items():
        assert doc != text, what
        try:
            check_generated_tables(doc, "README.md", ["real"], reports)
        except AssertionError:
            continue
        pytest.fail(f"{what}: not caught")


def test_bundled_weights_measure_what_their_metrics_say(real_dir):
    """On ../shared/data/real the default recipe of the bundled weights gives the per-image AEEs its JSON records, is
    below DIS medium on every group (the bar), and below zero flow."""
    from collections import defaultdict

    import numpy as np

    from flowcli.api import Estimator
    from flowcli.data.datasets import open_dataset
    from flowcli.metrics import aee
    from flowcli.weights import bundled_entries

    doc = bundled_entries()[0].load_metrics()["real"]
    recorded = {im["name"]: im["aee"] for im in doc["methods"]["liteflownet-recipe"]["per_image"]}
    dis = defaultdict(list)
    for im in doc["methods"]["dis"]["per_image"]:
        dis[im["sequence"]].append(im["aee"])
    est = Estimator(device="cpu")
    ours, zero = defaultdict(list), defaultdict(list)
    for s in open_dataset("folder", real_dir):
        value = aee(est.estimate(s["img1"], s["img2"]), s["flow"], s.get("valid"))
        # the JSON was measured in the recipe's own precision on a CPU with native bf16; a CPU without it runs fp32,
        # whose figures differ by round-off of the network's output
        tol = 0.01 if est.precision == "bf16" else max(0.01, 0.03 * recorded[s["name"]])
        assert abs(value - recorded[s["name"]]) < tol, (s["name"], value, recorded[s["name"]])
        ours[s["sequence"]].append(value)
        zero[s["sequence"]].append(aee(np.zeros_like(s["flow"]), s["flow"], s.get("valid")))
    for group, values in ours.items():
        assert np.mean(values) < np.mean(dis[group]) and np.mean(values) < np.mean(zero[group]), group


def _two_networks(seed_main=0, seed_other=1):
    """(main state dict, a second one that differs in the coarse decoders only, as a large-motion stage leaves it)."""
    torch.manual_seed(seed_main)
    main = LiteFlowNet().state_dict()
    torch.manual_seed(seed_other)
    fresh = LiteFlowNet().state_dict()
    other = {k: (fresh[k] if k.startswith("matching.") and k.split(".")[1] in ("3", "4") else v)
             for k, v in main.items()}
    return main, other


def test_a_weight_set_is_stored_as_its_difference_and_read_back_whole(tmp_path):
    from flowcli.weights import weight_set_delta

    main, other = _two_networks()
    delta = weight_set_delta(main, other, half=True)
    assert delta and set(delta) == {k for k in main if not torch.equal(main[k].half(), other[k].half())}
    assert all(k.startswith(("matching.3.", "matching.4.")) for k in delta)
    save_checkpoint(tmp_path / "w.pt", main, {"name": "w", "recipe": {"candidates": ["net@1", "net@0.5:large"]}},
                    half=True, weight_sets={"large": delta})
    ckpt = load_checkpoint(tmp_path / "w.pt")
    assert list(ckpt.weight_sets) == ["large"] and ckpt.recipe.weight_sets == ("large",)
    whole = ckpt.weight_set("large")
    assert set(whole) == set(main)
    for k in main:
        assert torch.equal(whole[k], other[k].half().float()), k
        assert torch.equal(ckpt.weight_set("")[k], main[k].half().float()), k
    with pytest.raises(KeyError, match="carries no weight set 'small'.*it carries: large"):
        ckpt.weight_set("small")


@pytest.mark.parametrize("sets, recipe, message", [
    ({"large": {"matching.9.main.0.weight": torch.zeros(1)}}, None, "weight set 'large' holds tensors the network lacks"),
    ({"large": {"matching.4.main.0.weight": torch.zeros(3)}}, None, "weight set 'large' holds misshaped tensors"),
    ({"large": {"matching.4.main.0.weight": [1.0]}}, None, "weight set 'large' holds entries that are not tensors"),
    ({"Large!": {"matching.4.main.0.weight": torch.zeros(1)}}, None, "weight set name 'Large!'"),
    ({"large": {}}, None, "weight set 'large' must be a non-empty mapping"),
    ({f"s{i}": {"matching.4.main.0.bias": torch.zeros(1)} for i in range(5)}, None, "at most 4 weight sets"),
    ([1, 2], None, "its weight_sets must be a mapping"),
    (None, {"candidates": ["net@1", "net@0.25:large"]}, "its recipe names the weight set 'large', which the file"),
])
def test_broken_weight_sets_are_refused_naming_the_file(tmp_path, sets, recipe, message):
    main = LiteFlowNet().state_dict()
    if isinstance(sets, dict):  # right shapes where the case is not about shapes
        sets = {n: {k: (torch.zeros_like(main[k]) if isinstance(v, torch.Tensor) and k in main and v.numel() == 1
                        and "misshaped" not in message else v) for k, v in sd.items()} for n, sd in sets.items()}
    obj = {"format": "flowcli", "version": 1, "state_dict": main, "meta": {"name": "x"}}
    if sets is not None:
        obj["weight_sets"] = sets
    if recipe is not None:
        obj["meta"]["recipe"] = recipe
    torch.save(obj, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "bad.pt")) + ".*" + re.escape(message)):
        read_checkpoint(tmp_path / "bad.pt")
