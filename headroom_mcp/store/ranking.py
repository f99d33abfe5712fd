"""Hybrid ranking: dense cosine fused with normalised BM25, gentle priors, a noise floor.

Weighted score fusion, not rank fusion: equal-weight RRF throws away how close a match is,
which hurts on short factual memories. The weights were tuned on LoCoMo conversations
(see bench/README.md for the procedure and the held-out check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Weight of the lexical score (BM25 divided by the best BM25 among the candidates).
LEXICAL_WEIGHT = 0.5
#: Results whose fused score is below this are noise and are not returned.
SCORE_FLOOR = 0.30
#: A candidate with no query term in common must reach this cosine on its own.
DENSE_ONLY_FLOOR = 0.35
IMPORTANCE_WEIGHT = 0.10
RECENCY_WEIGHT = 0.05
RECENCY_HALF_LIFE_DAYS = 30.0


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
) -> list[Scored]:
    """Fused, boosted and floored candidates, best first.

    ``dense`` must hold a cosine for every candidate (lexical-only ones are scored densely
    by the caller); ``lexical`` holds raw BM25 for those that matched a query term.
    """
    top = max(lexical.values(), default=0.0)
    out = []
    for doc_id, cosine in dense.items():
        lex = lexical.get(doc_id, 0.0) / top if top > 0 else 0.0
        if lex == 0.0 and cosine < DENSE_ONLY_FLOOR:
            continue
        score = cosine + LEXICAL_WEIGHT * lex
        score += IMPORTANCE_WEIGHT * (importance.get(doc_id, 0.5) - 0.5)
        score += RECENCY_WEIGHT * math.exp(-math.log(2) * age_days.get(doc_id, 0.0) / RECENCY_HALF_LIFE_DAYS)
        if score < SCORE_FLOOR:
            continue
        out.append(Scored(doc_id, round(score, 6), round(cosine, 6), round(lex, 6)))
    out.sort(key=lambda s: s.score, reverse=True)
    return out
