"""The lineage graph of a product page: which products are shown, in which layer, with which
edges; cycles end; unknown inputs are drawn but not linked; text is escaped."""

from __future__ import annotations

from govern.service.lineage import edges, layers, lineage_svg

MESH = {
    "a/raw": {"inputs": []},
    "b/clean": {"inputs": ["a/raw", "x/gone"]},
    "c/mart": {"inputs": ["b/clean"]},
    "d/report": {"inputs": ["c/mart", "a/raw"]},
    "e/far": {"inputs": ["d/report"]},
    "f/farther": {"inputs": ["e/far"]},
    "g/unrelated": {"inputs": []},
}


def test_layers_go_up_and_down_to_the_depth_nearest_first():
    shown = layers("c/mart", MESH, depth=2)
    assert shown == {"c/mart": 0, "b/clean": -1, "a/raw": -2, "x/gone": -2, "d/report": 1,
                     "e/far": 2}
    assert "f/farther" not in shown and "g/unrelated" not in shown
    # a/raw is also an input of d/report (layer 1), but it stays where it was found first
    assert edges(shown, MESH) == [("a/raw", "b/clean"), ("a/raw", "d/report"),
                                  ("b/clean", "c/mart"), ("c/mart", "d/report"),
                                  ("d/report", "e/far"), ("x/gone", "b/clean")]


def test_a_cycle_ends_and_draws_no_backward_edge():
    cyclic = {"p/one": {"inputs": ["p/two"]}, "p/two": {"inputs": ["p/one"]}}
    assert layers("p/one", cyclic) == {"p/one": 0, "p/two": -1}
    svg = lineage_svg("p/one", cyclic)
    assert svg.count("<path class=\"edge\"") == 1


def test_unknown_inputs_are_drawn_unlinked_and_text_is_escaped():
    svg = lineage_svg("b/clean", {**MESH, "b/clean": {"inputs": ["a/raw", "x/gone"]}})
    assert '<a href="/catalog/a/raw">' in svg and '<a href="/catalog/x/gone">' not in svg
    assert "x/gone (not in the catalog)" in svg
    assert "<script" not in lineage_svg("q/x", {"q/x": {"inputs": ["<script>/y"]}})
