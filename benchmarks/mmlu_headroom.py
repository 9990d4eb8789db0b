"""How far routing on the prompt alone can go on MMLU, and what signal the rest would need.

A router that reads only the prompt can learn two things: which subject a question belongs to
(and how much the large model gains there on average), and how hard the question is *within* its
subject. This prints:

1. APGR and CPT(50%) of routing by the true subject alone (each subject's mean gain, learnt on
   the other folds), beside trained routers (same folds);
2. for each router and each cheap text feature, its AUROC for "the large model was better" among
   the prompts of one subject, averaged over subjects (0.5 = no signal beyond the subject);
3. a simulation: the true-subject prior plus a synthetic within-subject signal of known AUROC
   (the real gain plus Gaussian noise, mixed in with the best weight found in hindsight), so the
   AUROC a router would need for a target APGR can be read off. Both the true subject and the
   hindsight weight favour the simulation, so the AUROC it reports needed is a lower bound.

Run: python benchmarks/mmlu_headroom.py --data ../shared/data/routing/routellm/mmlu [--encoder minilm]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from hybridlm.evaluation.router_eval import RouterEvaluator, category_prior, kfold_splits, two_model_result
from hybridlm.models.encoder import encoder_name
from hybridlm.routing.features import NAMES, feature_matrix
from hybridlm.routing.outcomes import load_outcomes

from machine import print_table  # benchmarks/machine.py: run as a script, its folder is on the path

NOISE_LEVELS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
MIX_WEIGHTS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def within_subject_auroc(score: np.ndarray, better: np.ndarray, subjects: np.ndarray) -> float:
    """AUROC for `better` inside each subject, weighted by the subject's size."""
    aurocs, sizes = [], []
    for s in np.unique(subjects):
        rows = subjects == s
        if 0 < better[rows].sum() < rows.sum():
            aurocs.append(roc_auc_score(better[rows], score[rows]))
            sizes.append(rows.sum())
    return float(np.average(aurocs, weights=sizes))


def simulate(weak: np.ndarray, strong: np.ndarray, prior: np.ndarray, subjects: np.ndarray,
             seeds: int) -> list[dict[str, float]]:
    """The prior plus gain-plus-noise signals: within-subject AUROC against the APGR it buys."""
    gain = strong - weak
    rows = []
    for noise in NOISE_LEVELS:
        aurocs, apgrs, cpts = [], [], []
        for seed in range(seeds):
            signal = gain + noise * np.random.default_rng(seed).standard_normal(len(gain))
            aurocs.append(within_subject_auroc(signal, gain > 0, subjects))
            best = max((two_model_result("sim", prior + w * signal, weak, strong) for w in MIX_WEIGHTS),
                       key=lambda r: r.apgr)
            apgrs.append(best.apgr)
            cpts.append(best.cpt50)
        rows.append({"noise": noise, "within_auroc": float(np.mean(aurocs)), "apgr": float(np.mean(apgrs)),
                     "cpt50": float(np.mean(cpts))})
    return rows


def auroc_needed(rows: list[dict[str, float]], metric: str, target: float) -> float:
    """Within-subject AUROC at which the simulated metric reaches the target (interpolated)."""
    pts = sorted((r[metric], r["within_auroc"]) for r in rows)
    return float(np.interp(target, [m for m, _ in pts], [u for _, u in pts]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routing/routellm/mmlu"))
    parser.add_argument("--encoder", default="minilm-static", help="minilm-static, minilm or a local folder")
    parser.add_argument("--kinds", default="ensemble,knn", help="trained routers to set beside the prior")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-seeds", type=int, default=3)
    parser.add_argument("--target-apgr", type=float, default=0.70)
    parser.add_argument("--target-cpt50", type=float, default=0.25)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()

    data = load_outcomes(args.data)
    splits = kfold_splits(len(data), args.folds, args.seed)
    prior = category_prior(data, splits)
    if prior is None:
        raise SystemExit(f"{args.data}: this analysis needs prompts grouped by subject (category)")
    subjects = np.array(data.categories)
    weak_i, strong_i = data.pair()
    weak, strong = data.scores[:, weak_i], data.scores[:, strong_i]
    better = strong > weak
    evaluator = RouterEvaluator(encoder_name(args.encoder))
    scores = {}
    for kind in (k.strip() for k in args.kinds.split(",") if k.strip()):
        scores[f"{kind} ({Path(args.encoder).name})"] = evaluator.out_of_fold(data, kind, args.folds, args.seed)
    features = feature_matrix(data.prompts)
    prior_result = two_model_result("prior", prior, weak, strong)
    routers = {"true subject alone": {"apgr": prior_result.apgr, "cpt50": prior_result.cpt50}}
    for name, score in scores.items():
        r = two_model_result(name, score, weak, strong)
        routers[name] = {"apgr": r.apgr, "cpt50": r.cpt50, "within_auroc": within_subject_auroc(score, better, subjects)}
    feature_auroc = {}
    for j, name in enumerate(NAMES):
        up = within_subject_auroc(features[:, j], better, subjects)
        feature_auroc[name] = max(up, 1.0 - up)  # the better direction, chosen in hindsight

    rows = simulate(weak, strong, prior, subjects, args.noise_seeds)
    needed = {"apgr": auroc_needed(rows, "apgr", args.target_apgr),
              "cpt50": auroc_needed(rows, "cpt50", args.target_cpt50)}
    note = (f"{data.name}, {len(data)} prompts, {args.folds}-fold, seed {args.seed}; large model better on "
            f"{better.mean():.1%}")
    print_table(["signal", "APGR", "CPT(50%)", "within-subject AUROC"],
                [(n, f"{r['apgr']:.3f}", f"{r['cpt50']:.1%}", f"{r['within_auroc']:.3f}" if "within_auroc" in r
                  else "none by construction") for n, r in routers.items()], note)
    print()
    best_feature = max(feature_auroc, key=lambda n: feature_auroc[n])
    print(f"text features, within-subject AUROC (better direction): best {best_feature} "
          f"{feature_auroc[best_feature]:.3f}; all: "
          + ", ".join(f"{n} {v:.3f}" for n, v in sorted(feature_auroc.items(), key=lambda kv: -kv[1])))
    print()
    print_table(["noise sd", "within-subject AUROC", "APGR (prior + signal)", "CPT(50%)"],
                [(r["noise"], f"{r['within_auroc']:.3f}", f"{r['apgr']:.3f}", f"{r['cpt50']:.1%}") for r in rows],
                f"simulated, mean of {args.noise_seeds} noise seeds")
    print(f"\nwithin-subject AUROC needed on top of the true subject: {needed['apgr']:.3f} for APGR "
          f"{args.target_apgr:.2f}, {needed['cpt50']:.3f} for CPT(50%) {args.target_cpt50:.0%}")
    if args.json:
        print(json.dumps({"routers": routers, "features": feature_auroc, "simulation": rows,
                          "targets": {"apgr": args.target_apgr, "cpt50": args.target_cpt50},
                          "auroc_needed": needed}))


if __name__ == "__main__":
    main()
