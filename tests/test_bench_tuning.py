"""The bench's parameter search: the grid, then past an edge while the validation score improves."""
from mpirecon.bench.tuning import grid_points, search


def test_grid_points_are_every_combination():
    assert grid_points({}) == [{}]
    pts = grid_points({"a": [1, 2], "b": [0.1, 1.0, 10.0]})
    assert len(pts) == 6 and {"a": 2, "b": 10.0} in pts


def test_an_interior_optimum_is_not_extended():
    best, tuning = search({"lam": [0.01, 0.1, 1.0]}, lambda p: -abs(p["lam"] - 0.1))
    assert best == {"lam": 0.1} and len(tuning) == 3


def test_an_edge_optimum_is_followed_geometrically_until_the_score_falls():
    # the true optimum 9.0 lies past the grid's largest value 1.0 (steps of 10x: 10 is best, 100 worse)
    best, tuning = search({"mu": [0.01, 0.1, 1.0], "rho": [1.0, 2.0]},
                          lambda p: -abs(p["mu"] - 9.0) - abs(p["rho"] - 1.0))
    assert best["rho"] == 1.0 and abs(best["mu"] - 10.0) < 1e-9
    extended = [(round(t["params"]["mu"], 6), t["params"]["rho"]) for t in tuning if t.get("extended")]
    assert extended == [(10.0, 1.0), (100.0, 1.0), (10.0, 0.5)]  # rho's best is its lower edge: one step down


def test_integer_parameters_stay_integers_and_the_steps_are_capped():
    best, tuning = search({"iterations": [5, 10, 20, 40]}, lambda p: p["iterations"], edge_steps=2)
    assert best == {"iterations": 160} and all(isinstance(t["params"]["iterations"], int) for t in tuning)
    best, _ = search({"iterations": [5, 10]}, lambda p: -p["iterations"], edge_steps=5)
    assert best == {"iterations": 1}  # 5 -> 2 (rounded 2.5) -> 1 -> stops (0 is no iteration count)


def test_a_step_out_of_a_parameters_range_ends_that_direction():
    # alpha in [0, 1]: the best grid point 0.8 is an edge, but 0.8 * 1.6 = 1.28 is not a valid value
    best, tuning = search({"alpha": [0.5, 0.8]}, lambda p: p["alpha"], valid=lambda p: p["alpha"] <= 1)
    assert best == {"alpha": 0.8} and len(tuning) == 2
