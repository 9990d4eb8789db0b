import numpy as np
import pytest

from hybridlm.evaluation.routing_metrics import (
    aiq,
    apgr,
    cpt,
    nondecreasing_hull,
    oracle_scores,
    pgr_curve,
)
from hybridlm.routing.calibrate import calibrate, deliver

rng = np.random.default_rng(0)
N = 4000
WEAK = (rng.random(N) < 0.6).astype(float)
STRONG = (rng.random(N) < 0.8).astype(float)  # independent: sometimes the weak model wins


def test_curve_runs_from_all_weak_to_all_strong() -> None:
    curve = pgr_curve(rng.random(N), WEAK, STRONG)
    assert len(curve) == 11
    assert curve[0].strong_share == 0.0 and curve[0].quality == pytest.approx(WEAK.mean())
    assert curve[-1].strong_share == 1.0 and curve[-1].quality == pytest.approx(STRONG.mean())


def test_random_scores_half_and_oracle_above_one() -> None:
    wm, sm = WEAK.mean(), STRONG.mean()
    random_apgr = apgr(pgr_curve(rng.random(N), WEAK, STRONG), wm, sm)
    oracle_curve = pgr_curve(oracle_scores(WEAK, STRONG), WEAK, STRONG)
    assert random_apgr == pytest.approx(0.5, abs=0.03)
    assert apgr(oracle_curve, wm, sm) > 1.0
    assert cpt(oracle_curve, wm, sm, 0.5) < cpt(pgr_curve(rng.random(N), WEAK, STRONG), wm, sm, 0.5)


def test_cpt_of_a_straight_line_is_the_fraction() -> None:
    curve = pgr_curve(rng.random(200_000), np.zeros(200_000), np.ones(200_000))
    assert cpt(curve, 0.0, 1.0, 0.5) == pytest.approx(0.5, abs=0.01)
    assert cpt(curve, 0.0, 1.0, 0.8) == pytest.approx(0.8, abs=0.01)


def test_hull_drops_dominated_points_and_stops_rising() -> None:
    costs, quals = nondecreasing_hull(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0.5, 0.55, 0.8, 0.81, 0.7]))
    assert list(costs) == [1.0, 3.0, 4.0]
    assert list(quals) == [0.5, 0.8, 0.81]


def test_aiq_of_single_models_and_a_router() -> None:
    assert aiq(np.array([2.0]), np.array([0.6]), max_cost=10.0) == pytest.approx(0.6 * 8 / 10)
    assert aiq(np.array([10.0]), np.array([0.9]), max_cost=10.0) == 0.0
    router = aiq(np.array([2.0, 10.0]), np.array([0.6, 0.9]), max_cost=10.0)
    assert router == pytest.approx((0.6 + 0.9) / 2 * 8 / 10)


def noisy_scores() -> np.ndarray:
    return (STRONG - WEAK) + rng.normal(0, 0.7, N)


@pytest.mark.parametrize(("target", "value"), [("llm_share", 0.3), ("quality", 0.95), ("cost", 4.0)])
def test_calibration_meets_its_target_on_held_out_data(target: str, value: float) -> None:
    costs_weak, costs_strong = np.full(N, 1.0), np.full(N, 10.0)
    result = calibrate(noisy_scores(), target, value, WEAK, STRONG, costs_weak, costs_strong)  # type: ignore[arg-type]
    field = {"llm_share": "llm_share", "quality": "quality_vs_llm", "cost": "cost"}[target]
    lo, hi = result.interval[field]
    held = getattr(result.held_out, field)
    assert lo <= held <= hi
    assert result.met_on_held_out
    if target == "llm_share":
        assert abs(held - value) < 0.03
    elif target == "quality":
        assert held >= value - (hi - lo) and result.held_out.llm_share < 1.0  # the target, within the interval
    else:
        assert held <= value + 0.2 and result.held_out.llm_share > 0.0


def test_deliver_counts_calls_quality_and_cost() -> None:
    d = deliver(np.array([0.1, 0.9]), 0.5, np.array([1.0, 0.0]), np.array([1.0, 1.0]), np.array([1.0, 1.0]),
                np.array([5.0, 5.0]))
    assert (d.llm_share, d.quality, d.cost) == (0.5, 1.0, 3.0)


def test_a_guaranteed_quality_costs_more_llm_calls_and_delivers_at_least_the_average_one() -> None:
    scores = noisy_scores()
    costs = (np.full(N, 1.0), np.full(N, 10.0))
    average = calibrate(scores, "quality", 0.95, WEAK, STRONG, *costs)
    guaranteed = calibrate(scores, "quality", 0.95, WEAK, STRONG, *costs, guarantee=0.95)
    assert guaranteed.threshold <= average.threshold
    assert guaranteed.held_out.llm_share >= average.held_out.llm_share
    assert guaranteed.held_out.quality_vs_llm >= average.held_out.quality_vs_llm
    assert guaranteed.calibration.quality_vs_llm >= 0.95


def test_category_prior_learns_each_category_on_the_training_side_only() -> None:
    from hybridlm.evaluation.router_eval import category_prior, kfold_splits
    from hybridlm.routing.outcomes import OutcomeSet

    categories = [f"c{i % 10}" for i in range(200)]
    weak = np.array([0.0 if i % 10 < 3 else 1.0 for i in range(200)])  # the large model gains on c0-c2
    data = OutcomeSet([f"q{i}" for i in range(200)], ["small", "large"], np.column_stack([weak, np.ones(200)]),
                      np.tile([0.1, 1.0], (200, 1)), categories)
    prior = category_prior(data, kfold_splits(200, 5, 0))
    assert prior is not None
    assert np.allclose(prior, 1.0 - weak)
    held_out = [(np.arange(100), np.arange(100, 200))]
    data.scores[:100, 0] = 1.0  # the training half now says the large model never gains
    assert np.allclose(category_prior(data, held_out)[100:], 0.0)  # type: ignore[index]
    no_groups = OutcomeSet(data.prompts, data.models, data.scores, data.costs, [f"u{i}" for i in range(200)])
    assert category_prior(no_groups, held_out) is None
