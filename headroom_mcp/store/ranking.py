"""Hybrid ranking: dense cosine fused with normalised BM25, gentle priors, a noise floor.

Weighted score fusion, not rank fusion: equal-weight RRF throws away how close a match is,
which hurts on short factual memories. The weights were chosen on the tuning splits of the
blind coding set and LoCoMo (``bench/fusion_sweep.py``; figures in the README's Quality
section).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .embedder import DEFAULT_MODEL_ID
from .mpnet import MODEL_NAME as MPNET


@dataclass(frozen=True)
class Weights:
    """How candidates are scored (chosen with bench/fusion_sweep.py)."""

    #: Weight of the lexical part. Chosen with bench/fusion_sweep.py on the tuning splits
    #: (the blind coding dev split and LoCoMo's tuning conversations): of the settings at
    #: least as good as dense cosine alone on every split, the best on LoCoMo. More weight
    #: helps LoCoMo (names, rare words shared with the question) and loses to dense alone
    #: on paraphrased coding questions (README, Quality).
    lexical: float = 0.2
    #: The lexical part is (coverage / best coverage) ** exponent * best coverage ** trust,
    #: where coverage is BM25 over the query's own best score (``LexicalIndex.search``).
    #: The first factor ranks lexical matches against each other; the second says how much
    #: the best of them is worth: little when it shares one common word with the query,
    #: so that a weak keyword match cannot outrank a close paraphrase.
    lexical_exponent: float = 2.0
    #: See ``lexical_exponent``: equal to it, the lexical part is coverage ** exponent; at 0
    #: the best lexical candidate gets the full weight whatever it covers.
    lexical_trust: float = 2.0
    #: Results whose fused score is below this are noise and are not returned. Set where they
    #: cost at most about one point of R@5 on the blind dev split: on MiniLM the best wrong
    #: candidate of an unanswerable coding question scores like a paraphrased right one, so
    #: a higher floor drops answers long before it drops noise (README, Quality). Unrelated
    #: queries ("capital of Mongolia", cosine ≤ 0.10) still return nothing.
    floor: float = 0.20
    #: A candidate with no query term in common must reach this cosine on its own.
    dense_only_floor: float = 0.15
    #: Unless the best candidate's relevance (``relevance``: the match alone, without the
    #: priors, so that a memory's age or importance does not move it) reaches this, nothing is
    #: relevant and recall returns nothing (``gated``). A gate on the best, not a floor on every
    #: result: a floor high enough to empty unanswerable questions also drops right answers
    #: ranked below the first, which a gate keeps. 0 for a person's words, whose best wrong
    #: candidate scores like a right answer (README, Quality); see ``AGENT_GATES``.
    gate: float = 0.0
    importance: float = 0.10
    recency: float = 0.05
    recency_half_life_days: float = 30.0


DEFAULT = Weights()
#: The weights for a query an agent wrote for ``recall`` (``asked_by="agent"``, what the MCP
#: tool passes): written as the expected statement with its likely names, as the tool's
#: description asks, it shares its answer's words, and more lexical weight then helps on every
#: tuning split (coding dev R@1 / R@5 0.939 / 0.992 -> 0.958 / 0.996, LoCoMo tuning R@5 / R@10
#: 0.658 / 0.733 -> 0.743 / 0.807, re-scored without floors; ``bench/fusion_sweep.py --queries
#: bench/data/agent_queries/guided``), where for a person's words it loses to dense alone.
AGENT = Weights(lexical=0.5, lexical_exponent=1.5, lexical_trust=0.5)
#: The gate of an agent's recall, per embedder (its ``calibration``): how close a relevant
#: match comes depends on the model, so each was chosen with that model, with
#: ``bench/fusion_sweep.py --queries bench/data/agent_queries/guided --gates``: the highest that
#: costs at most one point of R@5 on each tuning split (docs/quality.md, "Nothing relevant").
#: A model not calibrated here gets no gate: an uncalibrated cut-off would drop answers or keep
#: noise unknowingly.
AGENT_GATES: dict[str, float] = {
    DEFAULT_MODEL_ID: 0.50,  # the default embedder, MiniLM
    MPNET: 0.525,  # what `headroom-mcp model build` makes
}


def for_agent(calibration: str) -> Weights:
    """The weights for an agent's query under the embedder ``calibration``, its gate included."""
    return replace(AGENT, gate=AGENT_GATES.get(calibration, 0.0))


@dataclass(frozen=True)
class Scored:
    id: str
    score: float
    dense: float
    lexical: float


def fuse(
    dense: dict[str, float],
    lexical: dict[str, float],
    importance: dict[str, float],
    age_days: dict[str, float],
    weights: Weights = DEFAULT,
) -> list[Scored]:
    """Fused, boosted and floored candidates, best first.

    ``dense`` must hold a cosine for every candidate (lexical-only ones are scored densely
    by the caller); ``lexical`` holds the query coverage (BM25 over the query's own best,
    see ``LexicalIndex.search``) of those that matched a query term.
    """
    w = weights
    best = min(1.0, max(lexical.values(), default=0.0))
    scale = best ** w.lexical_trust
    out = []
    for doc_id, cosine in dense.items():
        lex = (min(1.0, lexical.get(doc_id, 0.0)) / best) ** w.lexical_exponent * scale if best > 0 else 0.0
        if lex == 0.0 and cosine < w.dense_only_floor:
            continue
        score = cosine + w.lexical * lex
        score += w.importance * (importance.get(doc_id, 0.5) - 0.5)
        score += w.recency * math.exp(-math.log(2) * age_days.get(doc_id, 0.0) / w.recency_half_life_days)
        if score < w.floor:
            continue
        out.append(Scored(doc_id, round(score, 6), round(cosine, 6), round(lex, 6)))
    out.sort(key=lambda s: s.score, reverse=True)
    return out


def relevance(scored: Scored, weights: Weights = DEFAULT) -> float:
    """How well a candidate matches the query: its fused score without the priors."""
    return scored.dense + weights.lexical * scored.lexical


def gated(ranked: list[Scored], weights: Weights = DEFAULT) -> list[Scored]:
    """``ranked``, or nothing when none of it is relevant enough (``Weights.gate``)."""
    return ranked if ranked and max(relevance(s, weights) for s in ranked) >= weights.gate else []


def priority(importance: float, seen_count: int, age_days: float, weights: Weights = DEFAULT) -> float:
    """How much a memory matters with no query: importance, then repetition and recency.

    A fact asserted by several agents or sessions (``seen_count``) is one the user keeps
    needing; recency uses the same half-life as recall.
    """
    repeated = min(1.0, math.log1p(max(0, seen_count - 1)) / math.log(10))
    recent = math.exp(-math.log(2) * age_days / weights.recency_half_life_days)
    return importance + 0.3 * repeated + 0.2 * recent


#: Forget by query takes a memory only when it scores at least this: recall's floor lets
#: through the best wrong candidate of a question nothing answers, which is fine for a list
#: but not for a deletion. Chosen with bench/forget_eval.py on the blind dev split.
FORGET_MIN_SCORE = 0.55
#: ... and the next one must score at least this much lower, or the query does not say which
#: it means: a neighbour on the same topic ("the staging database" for "when do staging
#: deploys happen?") is left, and so is everything when two are about as close (the agent
#: then shows the candidates and forgets by id).
FORGET_GAP = 0.08


def named_by(results: list[dict[str, Any]], min_score: float = FORGET_MIN_SCORE,
             gap: float = FORGET_GAP) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split recall ``results`` into the one memory a query clearly names (or none) and the rest.

    Forgetting is destructive, so the bar is higher than recall's: at least ``min_score``
    and ``gap`` above the next best. Results are ordered by score here: recall may place a
    newer conflicting memory above a slightly better older one. The rest are candidates to
    show, never to take.
    """
    ranked = sorted(results, key=lambda r: r["score"], reverse=True)
    if not ranked or ranked[0]["score"] < min_score or len(ranked) > 1 and ranked[0]["score"] - ranked[1]["score"] < gap:
        return [], ranked
    return ranked[:1], ranked[1:]
