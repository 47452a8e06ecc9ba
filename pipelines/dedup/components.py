"""Distributed connected components: large-star / small-star (Kiveris et al., SoCC 2014).

Nodes are strings; edges are (u, v) pairs.  Each round is a large-star step and a small-star
step, each one GroupByKey on a node whose neighbours are read as a (possibly paged) iterable in
two passes -- never collected into a list -- so a 10,000-node cluster never has to sit in one
worker's memory.  The rounds are unrolled in the pipeline graph (Beam graphs are static); after
the last round each component should be a star around its minimum node.  ``Resolve`` checks
that and counts the nodes where it does not hold ("unconverged"); with a converged graph every
node gets (root = component minimum, component size).

Without convergence the labels stay safe: a node may get a root that is not the component
minimum (a component is split into several clusters) but every label still points to a node of
the same component.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam import pvalue


def _canonical(edge):
    u, v = edge
    return (u, v) if u < v else (v, u)


def _both_directions(edge):
    u, v = edge
    yield u, v
    yield v, u


def _large_star(element):
    """Connect every larger neighbour of u to the minimum of u's closed neighbourhood."""
    u, neighbours = element
    m = u
    for v in neighbours:
        if v < m:
            m = v
    for v in neighbours:
        if v > u:
            yield (m, v)


def _to_larger(edge):
    u, v = edge  # canonical: u < v
    return v, u


def star(nodes, m):
    """Edges from ``m`` (the smallest of ``nodes``) to each of the other ``nodes``."""
    for v in nodes:
        if v != m:
            yield (m, v)


def _small_star(element):
    """Connect u and its smaller neighbours to the minimum of them."""
    u, smaller = element
    m = min(smaller, default=None)
    yield from star(smaller, m)
    yield (m, u)


class _Resolve(beam.DoFn):
    """Per node: parents (smaller neighbours) and children.  In a converged graph roots have only
    children and every other node exactly one parent (the root) and no children."""

    def process(self, element):
        node, links = element
        parents, children, first_parent = 0, 0, None
        for direction, other in links:
            if direction == "up":
                parents += 1
                first_parent = other if first_parent is None or other < first_parent else first_parent
            else:
                children += 1
        if parents > 1 or (parents and children):
            yield pvalue.TaggedOutput("stats", ("cc_unconverged_nodes", 1))
        if children:
            size = children + 1
            if not parents:
                yield node, (node, size)
                yield pvalue.TaggedOutput("stats", ("clusters", 1))
                yield pvalue.TaggedOutput("stats", ("max_cluster_size", size))
                yield pvalue.TaggedOutput("stats", ("clustered_docs", size))
            for direction, other in links:
                if direction == "down":
                    yield other, (node, size)


def _up_down(edge):
    u, v = edge
    yield v, ("up", u)
    yield u, ("down", v)


class ConnectedComponents(beam.PTransform):
    """edges (u, v) -> {"labels": (node, (root, size)) (one or more per node in an edge; take the
    minimum), "stats": ("cc_unconverged_nodes" | "clusters" | ..., n)}."""

    def __init__(self, max_rounds: int):
        super().__init__()
        if max_rounds < 1:
            raise ValueError(f"connected components needs at least 1 round, got {max_rounds}")
        self.max_rounds = max_rounds

    def expand(self, edges):
        e = (edges
             | "Canonical" >> beam.Map(_canonical)
             | "DropSelfLoops" >> beam.Filter(lambda uv: uv[0] != uv[1])
             | "Distinct0" >> beam.Distinct())
        for r in range(1, self.max_rounds + 1):
            e = (e
                 | f"LargeStarAdj{r}" >> beam.FlatMap(_both_directions)
                 | f"LargeStarGroup{r}" >> beam.GroupByKey()
                 | f"LargeStar{r}" >> beam.FlatMap(_large_star)
                 | f"SmallStarAdj{r}" >> beam.Map(_to_larger)
                 | f"SmallStarGroup{r}" >> beam.GroupByKey()
                 | f"SmallStar{r}" >> beam.FlatMap(_small_star)
                 | f"Distinct{r}" >> beam.Distinct())
        out = (e
               | "UpDown" >> beam.FlatMap(_up_down)
               | "GroupLinks" >> beam.GroupByKey()
               | "Resolve" >> beam.ParDo(_Resolve()).with_outputs("stats", main="labels"))
        return {"labels": out.labels, "stats": out.stats}
