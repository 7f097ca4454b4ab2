"""Group scans in the anomaly runner: the three groups, node frequencies, the table round trip."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from disentune.anomaly.detectors import SubsetScan
from disentune.anomaly.groups import (
    GROUP_NAMES,
    GROUPS_TABLE,
    GroupSettings,
    group_rows,
    groups_table,
    part_name,
    read_groups,
    results_from_table,
    scan_groups,
    written_parts,
)
from disentune.anomaly.ltss import candidate_alphas
from disentune.anomaly.pvalues import empirical_pvalues
from disentune.anomaly.runner import SpaceResult, resolve_spaces, score_benchmark
from disentune.anomaly.subset_scan import subset_score
from disentune.config import AnomalyConfig
from disentune.errors import UserError
from disentune.reports.storage import append_table

PLANTED = np.arange(6)


def _planted(seed=0, n_fit=300, n=(25, 20), num=30):
    """Background (n_fit, num); test: n[0] normal rows, then n[1] with PLANTED nodes shifted by 4."""
    rng = np.random.default_rng(seed)
    background = rng.normal(size=(n_fit, num))
    test = rng.normal(size=(sum(n), num))
    test[n[0]:, PLANTED] += 4.0
    labels = np.r_[np.zeros(n[0]), np.ones(n[1])].astype(np.int8)
    return background, test, labels


def _scan(background, test, labels, settings=GroupSettings(restarts=3, max_alphas=40), entropy=(7, 11)):
    detector = SubsetScan().fit(background)
    per_sample = detector.scan(test)
    pv = empirical_pvalues(test, detector.background_)
    return pv, per_sample, scan_groups(pv.pmin, pv.pmax, labels, per_sample.nodes, statistic="berk_jones",
                                       alpha_max=0.5, settings=settings, entropy=entropy)


def test_the_three_group_scans_find_the_planted_sub_matrix():
    background, test, labels = _planted()
    pv, per_sample, groups = _scan(background, test, labels)
    by = {g.group: g for g in groups}
    assert tuple(by) == GROUP_NAMES
    assert (by["normal"].n_samples, by["anomalous"].n_samples, by["all"].n_samples) == (25, 20, 45)
    # the anomalous samples' group holds the planted nodes; every sample of the all-sample group's
    # subset is anomalous and it finds (nearly) all of them
    assert set(PLANTED) <= set(by["anomalous"].nodes.tolist()) and len(by["anomalous"].nodes) <= 10
    assert set(PLANTED) <= set(by["all"].nodes.tolist())
    chosen = by["all"].samples
    assert (labels[chosen] == 1).all() and len(chosen) >= 18 and by["all"].selected_anomalous == len(chosen)
    assert by["anomalous"].selected_anomalous == len(by["anomalous"].samples)
    assert by["normal"].selected_anomalous == 0 and (labels[by["normal"].samples] == 0).all()
    assert by["all"].score > by["normal"].score and by["anomalous"].score > by["normal"].score
    for g in groups:
        # node frequencies: exactly the per-sample subsets of the group's samples, summed
        rows = {"normal": labels == 0, "anomalous": labels == 1, "all": np.ones(len(labels), bool)}[g.group]
        np.testing.assert_array_equal(g.node_counts, per_sample.nodes[rows].sum(axis=0))
        assert g.node_counts.sum() == per_sample.size[rows].sum() and g.n_nodes == 30
        # the stored sub-matrix and alpha reproduce the stored score on the thinned grid
        members = np.flatnonzero(rows)
        grid = candidate_alphas(pv.pmin[members], pv.pmax[members], 0.5, 40)
        again, alpha = subset_score(pv.pmin, pv.pmax, samples=g.samples, nodes=g.nodes, alphas=grid)
        assert np.isclose(again, g.score, rtol=1e-9) and alpha == g.alpha
        assert len(g.restart_scores) == 3 and np.isclose(max(g.restart_scores), g.score)
        assert (np.diff(g.samples) > 0).all() and (np.diff(g.nodes) > 0).all()


def test_group_scans_are_reproducible_and_an_empty_group_scores_zero():
    background, test, labels = _planted(seed=1)
    _, _, first = _scan(background, test, labels)
    _, _, again = _scan(background, test, labels)
    for a, b in zip(first, again):
        assert a.score == b.score and a.restart_scores == b.restart_scores
        np.testing.assert_array_equal(a.samples, b.samples)
        np.testing.assert_array_equal(a.nodes, b.nodes)
    _, _, normals_only = _scan(background, test[:25], labels[:25])
    empty = normals_only[1]
    assert (empty.group, empty.n_samples, empty.score, empty.alpha) == ("anomalous", 0, 0.0, 0.5)
    assert not len(empty.samples) and not len(empty.nodes) and not empty.node_counts.any()
    # with only normals, "all" scans the same rows (with its own restarts: a local optimum each)
    assert normals_only[2].n_samples == normals_only[0].n_samples == 25 and normals_only[2].score > 0
    np.testing.assert_array_equal(normals_only[2].node_counts, normals_only[0].node_counts)


def test_group_table_round_trips_through_its_part_dataset(tmp_path):
    background, test, labels = _planted(seed=2)
    settings = GroupSettings(restarts=2, max_alphas=None, max_iter=20)
    _, _, groups = _scan(background, test, labels, settings=settings)
    common = {"trial_id": "t1_r0", "trial_number": 1, "replicate": 0, "detector": "subset_scan",
              "benchmark": "creative", "seed": 99}
    rows = group_rows(common, "activation:encoder.features.5", groups, statistic="berk_jones", alpha_max=0.5,
                      settings=settings)
    key = "t1_r0/subset_scan/creative"
    part = append_table(groups_table(rows), str(tmp_path / GROUPS_TABLE), key=key)
    assert part.endswith(part_name(key)) and written_parts(str(tmp_path / GROUPS_TABLE)) == {part_name(key)}
    assert written_parts(str(tmp_path / "nothing.parquet")) == set()
    table = read_groups(str(tmp_path))
    assert table.num_rows == 3 and table.schema.metadata[b"disentune.table"] == b"anomaly_groups"
    stored = table.to_pylist()
    assert [r["group"] for r in stored] == list(GROUP_NAMES)
    assert {r["max_alphas"] for r in stored} == {None} and {r["restarts"] for r in stored} == {2}
    assert {r["seed"] for r in stored} == {99} and {r["statistic"] for r in stored} == {"berk_jones"}
    back = results_from_table(table)
    for g in groups:
        got = back[("t1_r0", "creative", "activation:encoder.features.5", g.group)]
        assert (got.score, got.alpha, got.n_samples, got.n_nodes, got.restart_scores, got.selected_anomalous) == (
            g.score, g.alpha, g.n_samples, g.n_nodes, g.restart_scores, g.selected_anomalous)
        for name in ("samples", "nodes", "node_counts"):
            np.testing.assert_array_equal(getattr(got, name), getattr(g, name))
    assert read_groups(str(tmp_path / "elsewhere")).num_rows == 0


def test_group_settings_come_from_the_config_where_it_has_them():
    assert GroupSettings.from_config(AnomalyConfig()) == GroupSettings(5, 50, 50)
    cfg = SimpleNamespace(group_restarts=2, group_max_alphas=None, group_max_iter=7)
    assert GroupSettings.from_config(cfg) == GroupSettings(2, None, 7)


def _model(variant):
    from disentune.models.base import Hyper
    from disentune.registry import MODELS

    hyper = Hyper(latent_dim=4, lambda_mi=0.0, lambda_tc=0.0, lr=1e-3, dataset_size=100)
    torch.manual_seed(0)
    return MODELS.get(variant).build((1, 32, 32), hyper).eval()


LAYERS = ["pixel", "activation", "activation:encoder.features.3", "activation:discriminator.body.0.features.3",
          "activation:encoder.features.5", "pixel"]


def test_one_list_of_layers_serves_vaes_and_gans():
    assert resolve_spaces(_model("beta_tcvae"), LAYERS) == [
        "pixel", "activation:encoder.features.5", "activation:encoder.features.3"]
    assert resolve_spaces(_model("infogan"), LAYERS) == [
        "pixel", "activation:discriminator.body.0.features.5", "activation:discriminator.body.0.features.3"]
    # a typo under a module the model has is kept, so that the features fail naming the layers
    assert resolve_spaces(_model("beta_tcvae"), ["activation:encoder.featurs.3"]) == ["activation:encoder.featurs.3"]
    with pytest.raises(UserError, match="none of the feature spaces"):
        resolve_spaces(_model("beta_tcvae"), ["activation:discriminator.body.0.features.3"])


def test_score_benchmark_scans_groups_in_every_layer(dsprites32):
    cfg = AnomalyConfig(scan_spaces=("pixel", "activation:encoder.features.3", "activation:encoder.features.5",
                                     "activation:discriminator.body.0.features.5"), num_fit=60, num_test=20)
    results = score_benchmark(_model("beta_tcvae"), dsprites32, (), "subset_scan", "local_defects@0.2", cfg,
                              seed=5, device=torch.device("cpu"), group_scans=True)
    assert [r.space for r in results] == ["pixel", "activation:encoder.features.3", "activation:encoder.features.5"]
    for r, nodes in zip(results, (1024, 2048, 1024)):
        assert isinstance(r, SpaceResult) and [g.group for g in r.groups] == list(GROUP_NAMES)
        normal, anomalous, every = r.groups
        assert (normal.n_samples, anomalous.n_samples, every.n_samples) == (20, 20, 40)
        assert {g.n_nodes for g in r.groups} == {nodes}
        np.testing.assert_array_equal(normal.node_counts + anomalous.node_counts, every.node_counts)
        assert normal.node_counts.sum() == r.subset_size[r.labels == 0].sum()
        assert anomalous.node_counts.sum() == r.subset_size[r.labels == 1].sum()
        assert every.selected_anomalous == int(r.labels[every.samples].sum())
    knn = score_benchmark(_model("beta_tcvae"), dsprites32, (), "knn", "local_defects@0.2", cfg, seed=5,
                          device=torch.device("cpu"), group_scans=True)
    assert [r.groups for r in knn] == [()]
    # without group_scans (the search objectives' use) the per-sample scan alone, with the same scores
    plain = score_benchmark(_model("beta_tcvae"), dsprites32, (), "subset_scan", "local_defects@0.2",
                            AnomalyConfig(scan_spaces=("pixel",), num_fit=60, num_test=20), seed=5,
                            device=torch.device("cpu"))
    assert [r.groups for r in plain] == [()]
    np.testing.assert_array_equal(plain[0].scores, results[0].scores)
