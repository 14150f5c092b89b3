"""Graph analysis: 100 random graphs, each built with networkx and measured:
betweenness centrality, average shortest path length, clustering."""
import networkx as nx

from _jobrun import main

GRAPHS = 100


def task(spec):
    n, m, seed = spec
    g = nx.gnm_random_graph(n, m, seed=seed)
    g = g.subgraph(max(nx.connected_components(g), key=len))
    bc = nx.betweenness_centrality(g)
    top = sorted(bc, key=bc.get, reverse=True)[:3]
    return (seed, len(g), top, round(max(bc.values()), 6),
            round(nx.average_shortest_path_length(g), 6), round(nx.average_clustering(g), 6))


def make_items(scale, variant=0):
    n = max(2, round(GRAPHS * scale))
    return [(80 + 4 * (i % 9), 300 + 12 * (i % 7), i + variant * n) for i in range(n)]


def summary(results):
    return results


if __name__ == "__main__":
    raise SystemExit(main(task, make_items, summary))
