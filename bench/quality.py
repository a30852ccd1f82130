"""Quality of votescore's scores against the simulator's hidden truth, as a stream goes on.

Replays a simulated stream through the same steps the worker takes (features, labels,
population learning, per-voter evidence with household shares, retractions, scoring)
and, after 1k, 10k, 50k and 200k labels, measures on a fixed sample of voters:

- (a) ``online``: votescore's live scores (population prior + the voter's evidence),
  and ``online_prior``: the population model alone;
- (b) ``batch``: a scikit-learn logistic regression refit from scratch on every label
  so far, as the prior, with the same evidence update (``batch_prior``: alone);
- (c) ``static``: the vendor scores a campaign holds before any field data.

Metrics: AUC against outcomes drawn once from the hidden truth; expected log loss and
expected calibration error (10 equal-width bins) against the true probabilities.

Also: learn and predict cost per event (beside a plain-Python dot product measured in
the same run, the floor for any pure-Python linear model), and whether each event's
evidence moved its own voter's score, in its direction, by that same event.

Run: ``.venv/bin/python bench/quality.py`` (full, about 3 minutes of one core) or
``--quick`` (25k voters up to 50k labels, about 30 s). ``--compare`` instead measures
candidate population-model settings side by side (``--only NAME ...`` to pick some).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.evidence import evidence_from_event, household_share  # noqa: E402
from models.features import voter_features  # noqa: E402
from models.population import SCORES, PopulationModels, labels_from_event  # noqa: E402
from models.scoring import PRIOR_STRENGTH, score_voter  # noqa: E402
from models.voters import generate_voters, public_attributes, simulate_events  # noqa: E402

TRUTH = {score: f"true_{score}" for score in SCORES}
STATIC_COLUMNS = {
    "support": "vendor_partisan_score",
    "turnout": "vendor_turnout_score",
    "donor": "vendor_donor_score",
}
TARGET_AUC_GAP = 0.01
TARGET_ECE = 0.03


@dataclass
class Population:
    """The simulated voters, their features, households and an evaluation sample."""

    table: object
    rows: list[dict]
    features: list[dict[str, float]]
    index: dict[str, int]
    households: dict[str, list[int]]
    truth: dict[str, np.ndarray]
    sample: np.ndarray
    outcomes: dict[str, np.ndarray]


def build_population(voters: int, sample_size: int, seed: int) -> Population:
    table = generate_voters(voters, seed=seed)
    truth = {score: table.column(TRUTH[score]).to_numpy() for score in SCORES}
    rows = [public_attributes(row) for row in table.to_pylist()]
    households: dict[str, list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        households[row["household_id"]].append(position)

    rng = np.random.default_rng(seed + 1)
    sample = rng.choice(voters, size=min(sample_size, voters), replace=False)
    outcomes = {s: rng.random(sample.size) < truth[s][sample] for s in SCORES}
    return Population(
        table=table,
        rows=rows,
        features=[voter_features(row) for row in rows],
        index={row["voter_id"]: position for position, row in enumerate(rows)},
        households=households,
        truth=truth,
        sample=sample,
        outcomes=outcomes,
    )


@dataclass
class EvidenceStore:
    """Per-voter evidence records as the worker keeps them: event id -> evidence."""

    records: dict[int, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    holders: dict[str, list[int]] = field(default_factory=dict)

    def observe(self, event_id: str, voter: int, evidence: dict, members: list[int]) -> None:
        self.records[voter][event_id] = evidence
        holders = [voter]
        shared = household_share(evidence)
        for member in members:
            if member != voter and shared:
                self.records[member][event_id] = shared
                holders.append(member)
        self.holders[event_id] = holders

    def retract(self, event_id: str) -> None:
        for voter in self.holders.pop(event_id, []):
            self.records[voter].pop(event_id, None)

    def totals(self, voter: int) -> tuple[dict, dict]:
        totals: dict[str, list[float]] = {}
        counts: dict[str, int] = defaultdict(int)
        for evidence in self.records.get(voter, {}).values():
            for score, (successes, failures) in evidence.items():
                total = totals.setdefault(score, [0.0, 0.0])
                total[0] += successes
                total[1] += failures
                counts[score] += 1
        return {s: (t[0], t[1]) for s, t in totals.items()}, counts


@dataclass
class Replay:
    """The worker's per-event steps, with timings and the own-evidence check."""

    population: Population
    models: PopulationModels
    store: EvidenceStore = field(default_factory=EvidenceStore)
    labels: list[tuple[int, str, int, str]] = field(default_factory=list)
    retracted: set[str] = field(default_factory=set)
    learn_seconds: float = 0.0
    learned_events: int = 0
    score_seconds: float = 0.0
    scored_events: int = 0
    moved_right_way: int = 0
    directional: int = 0
    strong_support_moves: list[float] = field(default_factory=list)

    def step(self, event: dict) -> None:
        voter = self.population.index[event["voter_id"]]
        if event["type"] == "retraction":
            self.store.retract(event["payload"]["retracts"])
            self.retracted.add(event["payload"]["retracts"])
            return
        features = self.population.features[voter]
        self._learn(event, voter, features)

        evidence = evidence_from_event(event)
        if evidence:
            before = self._score(voter, features)
            household = self.population.rows[voter]["household_id"]
            self.store.observe(
                event["event_id"], voter, evidence, self.population.households[household]
            )
            started = time.perf_counter()
            after = self._score(voter, features)
            self.score_seconds += time.perf_counter() - started
            self.scored_events += 1
            self._check_reflected(event, evidence, before, after)

    def _learn(self, event: dict, voter: int, features: dict[str, float]) -> None:
        labels = labels_from_event(event)
        if not labels:
            return
        started = time.perf_counter()
        self.models.learn_one(features, labels)
        self.learn_seconds += time.perf_counter() - started
        self.learned_events += 1
        for score, label in labels.items():
            self.labels.append((voter, score, label, event["event_id"]))

    def _score(self, voter: int, features: dict[str, float]) -> dict:
        totals, counts = self.store.totals(voter)
        return score_voter(self.models.predict_one(features), totals, counts)

    def _check_reflected(self, event: dict, evidence: dict, before: dict, after: dict) -> None:
        for score, (successes, failures) in evidence.items():
            if successes == failures:
                continue
            self.directional += 1
            moved = after[score].probability - before[score].probability
            self.moved_right_way += moved * (successes - failures) > 0
        if event["type"] == "canvass" and event["payload"].get("support_id") == 1:
            self.strong_support_moves.append(after["support"].value - before["support"].value)


def metrics(predicted: np.ndarray, truth: np.ndarray, outcomes: np.ndarray) -> dict[str, float]:
    """AUC against drawn outcomes; expected log loss and ECE against the true probabilities."""
    p = np.clip(predicted, 1e-6, 1 - 1e-6)
    log_loss = -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    bins = np.minimum((p * 10).astype(int), 9)
    ece = 0.0
    for b in range(10):
        members = bins == b
        if members.any():
            ece += abs(p[members].mean() - truth[members].mean()) * members.mean()
    return {"auc": float(roc_auc_score(outcomes, p)), "logloss": float(log_loss), "ece": ece}


def batch_priors(population: Population, replay: Replay, matrix: np.ndarray) -> dict:
    """A scikit-learn logistic regression per score, refit from scratch on every label so far."""
    priors = {}
    for score in SCORES:
        rows = [
            (voter, label)
            for voter, name, label, event_id in replay.labels
            if name == score and event_id not in replay.retracted
        ]
        y = np.array([label for _, label in rows])
        if len(rows) < 2 or y.min() == y.max():
            priors[score] = np.full(population.sample.size, y.mean() if len(rows) else 0.5)
            continue
        model = LogisticRegression(C=1.0, max_iter=500)
        model.fit(matrix[[voter for voter, _ in rows]], y)
        priors[score] = model.predict_proba(matrix[population.sample])[:, 1]
    return priors


def static_priors(population: Population) -> dict[str, np.ndarray]:
    """The vendor scores alone (a flat 50 where the campaign has none)."""
    priors = {}
    for score in SCORES:
        column = STATIC_COLUMNS.get(score)
        if column is None:
            priors[score] = np.full(population.sample.size, 0.5)
            continue
        values = population.table.column(column).to_numpy(zero_copy_only=False)[population.sample]
        values = np.asarray(values, dtype=float) / 100.0
        priors[score] = np.where(np.isnan(values), np.nanmean(values), values)
    return priors


def live(prior: dict[str, np.ndarray], totals: list[tuple[dict, dict]]) -> dict:
    """Scores with each sampled voter's evidence applied to ``prior``."""
    result = {score: np.empty(len(totals)) for score in SCORES}
    for position, (total, count) in enumerate(totals):
        voter_prior = {score: float(prior[score][position]) for score in SCORES}
        for score, value in score_voter(voter_prior, total, count).items():
            result[score][position] = value.probability
    return result


def evaluate(population: Population, replay: Replay, matrix: np.ndarray) -> dict:
    """Metrics per method and score on the evaluation sample, now."""
    sample = population.sample
    online = [replay.models.predict_one(population.features[v]) for v in sample]
    online_prior = {s: np.array([p[s] for p in online]) for s in SCORES}
    batch_prior = batch_priors(population, replay, matrix)
    totals = [replay.store.totals(int(v)) for v in sample]
    methods = {
        "online": live(online_prior, totals),
        "online_prior": online_prior,
        "batch": live(batch_prior, totals),
        "batch_prior": batch_prior,
        "static": static_priors(population),
        "truth": {s: population.truth[s][sample] for s in SCORES},
    }
    return {
        (method, score): metrics(
            predictions[score], population.truth[score][sample], population.outcomes[score]
        )
        for method, predictions in methods.items()
        for score in SCORES
    } | {("fit", score): fitted_strength(batch_prior[score], population, score) for score in SCORES}


def fitted_strength(prior: np.ndarray, population: Population, score: str) -> dict:
    """The Beta pseudo-count matching the truth's spread around the batch prior."""
    truth = population.truth[score][population.sample]
    spread = float(np.mean((truth - prior) ** 2))
    return {"strength": float(np.mean(prior * (1 - prior)) / max(spread, 1e-9) - 1)}


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    population = build_population(args.voters, args.sample, args.seed)
    matrix = DictVectorizer(sparse=False).fit_transform(population.features)
    print(f"setup: {time.perf_counter() - started:.1f} s ({args.voters} voters)")

    replay = Replay(population, PopulationModels())
    checkpoints = list(args.checkpoints)
    results = {}
    for event in simulate_events(population.table, args.events, seed=args.seed + 2):
        if checkpoints and replay.models.labels_seen >= checkpoints[0]:
            results[checkpoints.pop(0)] = evaluate(population, replay, matrix)
        if not checkpoints:
            break
        replay.step(event)
    if checkpoints:
        print(f"note: the stream ended at {replay.models.labels_seen} labels", file=sys.stderr)

    print_results(results)
    print_targets(results)
    print_costs(replay, population)
    print(f"elapsed: {time.perf_counter() - started:.1f} s")
    return 0


def print_results(results: dict) -> None:
    for labels, table in results.items():
        for (method, score), values in table.items():
            for metric, value in values.items():
                unit = "pseudo-counts" if metric == "strength" else metric
                print(f"{score}.{method}.{metric}@{labels}: {value:.4f} {unit}")

    methods = ("online", "online_prior", "batch", "batch_prior", "static", "truth")
    print()
    print(f"{'labels':>7} {'score':<11} " + " ".join(f"{m:>21}" for m in methods))
    print(f"{'':>7} {'':<11} " + " ".join(f"{'auc  logl   ece':>21}" for _ in methods))
    for labels, table in results.items():
        for score in SCORES:
            cells = [
                "{auc:.3f} {logloss:.3f} {ece:.3f}".format(**table[(m, score)]) for m in methods
            ]
            print(f"{labels:>7} {score:<11} " + " ".join(f"{c:>21}" for c in cells))
    print()


def print_targets(results: dict) -> None:
    print(f"prior strength in use: {PRIOR_STRENGTH}")
    for labels, table in results.items():
        if labels < 50_000:
            continue
        for score in SCORES:
            gap = table[("batch_prior", score)]["auc"] - table[("online_prior", score)]["auc"]
            verdict = "ok" if gap <= TARGET_AUC_GAP else "MISSED"
            print(
                f"target.auc_gap.{score}@{labels}: {gap:.4f} auc "
                f"(batch minus online prior; limit {TARGET_AUC_GAP}) {verdict}"
            )
            ece = table[("online", score)]["ece"]
            verdict = "ok" if ece < TARGET_ECE else "MISSED"
            print(f"target.ece.{score}@{labels}: {ece:.4f} ece (limit {TARGET_ECE}) {verdict}")


def print_costs(replay: Replay, population: Population) -> None:
    learn = 1e6 * replay.learn_seconds / max(replay.learned_events, 1)
    score = 1e6 * replay.score_seconds / max(replay.scored_events, 1)
    predict = predict_cost(replay.models, population)
    print(f"learn_one: {learn:.1f} us/labeled event ({replay.learned_events} events)")
    print(f"predict_one: {predict:.1f} us/event (4 scores)")
    print(f"predict_and_score: {score:.1f} us/event (predict_one + evidence sum + score_voter)")
    print(f"raw_limit.dict_dot: {raw_dot_cost(population):.1f} us/event (4 plain-Python dots)")
    share = 100.0 * replay.moved_right_way / max(replay.directional, 1)
    print(f"own_evidence_reflected: {share:.2f} % of {replay.directional} directional updates")
    moves = replay.strong_support_moves
    if moves:
        print(f"strong_support_move: {np.mean(moves):.1f} points (mean over {len(moves)} IDs)")


def predict_cost(models: PopulationModels, population: Population) -> float:
    features = population.features[:2000]
    started = time.perf_counter()
    for x in features:
        models.predict_one(x)
    return 1e6 * (time.perf_counter() - started) / len(features)


def raw_dot_cost(population: Population) -> float:
    features = population.features[:2000]
    weights = {name: 0.1 for name in features[0]}
    started = time.perf_counter()
    for x in features:
        for _ in SCORES:
            sum(weights.get(name, 0.0) * value for name, value in x.items())
    return 1e6 * (time.perf_counter() - started) / len(features)


CANDIDATES = {
    "sgd0.005": {"optimizer": "sgd", "lr": 0.005, "intercept_lr": 0.005},
    "sgd0.02": {"optimizer": "sgd", "lr": 0.02},
    "sgd0.02+platt": {"optimizer": "sgd", "lr": 0.02, "calibrate": True},
    "sgd_decay0.5": {"optimizer": "sgd_decay", "lr": 0.5},
    "sgd_decay1": {"optimizer": "sgd_decay", "lr": 1.0},
    "adagrad0.03": {"lr": 0.03},
    "adagrad0.03+platt": {"lr": 0.03, "calibrate": True},
    "adagrad0.05": {"lr": 0.05},
    "adagrad0.1": {"lr": 0.1},
}


def compare(args: argparse.Namespace) -> int:
    """Population-model candidates, each fed the same labels, measured at each checkpoint."""
    population = build_population(args.voters, args.sample, args.seed)
    stream = []
    for event in simulate_events(population.table, args.events, seed=args.seed + 2):
        labels = labels_from_event(event)
        if labels:
            stream.append((population.features[population.index[event["voter_id"]]], labels))
    candidates = CANDIDATES if not args.only else {n: CANDIDATES[n] for n in args.only}
    for name, settings in candidates.items():
        models = PopulationModels(**settings)
        checkpoints = list(args.checkpoints)
        for features, labels in stream:
            models.learn_one(features, labels)
            if checkpoints and models.labels_seen >= checkpoints[0]:
                report_candidate(name, checkpoints.pop(0), models, population)
    return 0


def report_candidate(name: str, labels: int, models, population: Population) -> None:
    sample = population.sample
    predictions = [models.predict_one(population.features[v]) for v in sample]
    for score in SCORES:
        predicted = np.array([p[score] for p in predictions])
        values = metrics(predicted, population.truth[score][sample], population.outcomes[score])
        print(
            f"compare.{name}.{score}@{labels}: auc {values['auc']:.4f} "
            f"logloss {values['logloss']:.4f} ece {values['ece']:.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--compare", action="store_true", help="compare model candidates")
    parser.add_argument("--only", nargs="*", help="with --compare: these candidates only")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        args.voters, args.sample, args.checkpoints = 25_000, 3_000, (1_000, 10_000, 50_000)
    else:
        args.voters, args.sample = 100_000, 10_000
        args.checkpoints = (1_000, 10_000, 50_000, 200_000)
    args.events = int(args.checkpoints[-1] * 1.4) + 1_000
    return compare(args) if args.compare else run(args)


if __name__ == "__main__":
    sys.exit(main())
