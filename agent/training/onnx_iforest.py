"""Isolation Forest → a small, fast ONNX graph: one TreeEnsembleRegressor node plus three arithmetic nodes.

sklearn scores a sample by the mean over trees of its path length h(x) = depth(leaf) + c(n_leaf), where
c(n) is the expected path length of an unsuccessful BST search among n points (the part of the tree that
was not grown), and returns -2^(-E[h(x)] / c(max_samples)). Because each leaf's contribution is a
constant, the mean path length is exactly a regression forest with leaf value depth + c(n_leaf) and
aggregate AVERAGE — one ai.onnx.ml node — instead of the thousands of nodes a generic converter emits.
The graph then computes score = 2^(-E / c(max_samples)) = exp(E * (-ln 2 / c)), so higher = more anomalous
(the negation of `score_samples`).

Thresholds: sklearn compares a float32 feature against a float64 threshold; ONNX stores float32
thresholds. Rounding each threshold DOWN to the nearest float32 keeps `x <= t` exact for every float32 x.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

INPUT_NAME = "features"
OUTPUT_NAME = "score"
PATH_OUTPUT = "mean_path_length"
ML_OPSET = 3
ONNX_OPSET = 17


def average_path_length(n: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """c(n): 0 for n <= 1, 1 for n = 2, else 2 H(n-1) - 2 (n-1) / n with H(k) ~ ln k + Euler gamma (as sklearn)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _floor_f32(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    as32 = values.astype(np.float32)
    too_high = as32.astype(np.float64) > values
    as32[too_high] = np.nextafter(as32[too_high], np.float32(-np.inf))
    return as32


def _node_depths(left: np.ndarray[Any, Any], right: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    depth = np.zeros(len(left), dtype=np.int64)
    stack = [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child != -1:
                depth[child] = depth[node] + 1
                stack.append(child)
    return depth


def forest_to_onnx(forest: Any, n_features: int) -> bytes:
    """Serialise a fitted `sklearn.ensemble.IsolationForest` (deterministically: same forest, same bytes)."""
    subsample = forest._max_features != n_features
    treeids: list[int] = []
    nodeids: list[int] = []
    featureids: list[int] = []
    values: list[float] = []
    modes: list[str] = []
    trues: list[int] = []
    falses: list[int] = []
    t_tree: list[int] = []
    t_node: list[int] = []
    t_weight: list[float] = []
    for tree_idx, (est, feats) in enumerate(zip(forest.estimators_, forest.estimators_features_, strict=True)):
        tree = est.tree_
        left, right = tree.children_left, tree.children_right
        depth = _node_depths(left, right)
        leaf_value = depth + average_path_length(tree.n_node_samples)
        thresholds = _floor_f32(np.asarray(tree.threshold, dtype=np.float64))
        feature_map = np.asarray(feats) if subsample else None
        for node in range(tree.node_count):
            treeids.append(tree_idx)
            nodeids.append(node)
            if left[node] == -1:
                modes.append("LEAF")
                featureids.append(0)
                values.append(0.0)
                trues.append(0)
                falses.append(0)
                t_tree.append(tree_idx)
                t_node.append(node)
                t_weight.append(float(leaf_value[node]))
            else:
                f = int(tree.feature[node])
                modes.append("BRANCH_LEQ")
                featureids.append(int(feature_map[f]) if feature_map is not None else f)
                values.append(float(thresholds[node]))
                trues.append(int(left[node]))
                falses.append(int(right[node]))
    ensemble = helper.make_node(
        "TreeEnsembleRegressor",
        [INPUT_NAME],
        [PATH_OUTPUT],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="AVERAGE",
        post_transform="NONE",
        nodes_treeids=treeids,
        nodes_nodeids=nodeids,
        nodes_featureids=featureids,
        nodes_values=values,
        nodes_modes=modes,
        nodes_truenodeids=trues,
        nodes_falsenodeids=falses,
        nodes_missing_value_tracks_true=[0] * len(nodeids),
        target_treeids=t_tree,
        target_nodeids=t_node,
        target_ids=[0] * len(t_tree),
        target_weights=t_weight,
    )
    c = float(average_path_length(np.asarray([forest._max_samples]))[0])
    factor = -math.log(2.0) / c if c > 0 else 0.0
    factor_init = helper.make_tensor("neg_ln2_over_c", TensorProto.FLOAT, [], [factor])
    shape_init = helper.make_tensor("flat_shape", TensorProto.INT64, [1], [-1])
    mul = helper.make_node("Mul", [PATH_OUTPUT, "neg_ln2_over_c"], ["log_score"])
    exp = helper.make_node("Exp", ["log_score"], ["score_2d"])
    flat = helper.make_node("Reshape", ["score_2d", "flat_shape"], [OUTPUT_NAME])
    graph = helper.make_graph(
        [ensemble, mul, exp, flat],
        "logwarden_iforest",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["n", n_features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["n"])],
        initializer=[factor_init, shape_init],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="logwarden",
        doc_string="Isolation Forest anomaly score 2^(-E[h(x)]/c(max_samples)); higher = more anomalous.",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def opsets() -> dict[str, int]:
    return {"ai.onnx": ONNX_OPSET, "ai.onnx.ml": ML_OPSET}
