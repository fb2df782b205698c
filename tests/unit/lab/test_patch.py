"""Merge patch and the strategic merge patch kubectl sends."""

from __future__ import annotations

from typing import Any

from podnet.lab.apiserver.patch import merge_patch, strategic_merge_patch

POD: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}},
    "spec": {
        "containers": [
            {"name": "web", "image": "web:1", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
            {"name": "side", "image": "side:1"},
        ]
    },
}


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    out = merge_patch(POD, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"containers": [{"name": "x"}]}})
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["spec"]["containers"] == [{"name": "x"}]
    assert POD["metadata"]["labels"] == {"a": "1", "b": "2"}  # the input is untouched


def test_strategic_patch_merges_containers_by_name_and_keeps_other_fields() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
            "containers": [{"name": "web", "image": "web:2"}],
        }
    }
    out = strategic_merge_patch(POD, patch)
    assert [c["name"] for c in out["spec"]["containers"]] == ["side", "web"]
    web = out["spec"]["containers"][1]
    assert web["image"] == "web:2" and web["ports"] == [{"containerPort": 80}, {"containerPort": 443}]
    assert "$setElementOrder/containers" not in out["spec"]


def test_strategic_patch_deletes_list_elements_and_replaces_unkeyed_lists() -> None:
    patch = {
        "spec": {
            "containers": [
                {"name": "side", "$patch": "delete"},
                {"name": "web", "ports": [{"containerPort": 443, "$patch": "delete"}, {"containerPort": 8080}]},
            ]
        }
    }
    out = strategic_merge_patch(POD, patch)
    assert out["spec"]["containers"] == [
        {"name": "web", "image": "web:1", "ports": [{"containerPort": 80}, {"containerPort": 8080}]}
    ]
    policy = {"spec": {"ingress": [{"from": [{"podSelector": {}}]}, {"ports": [{"port": 80}]}]}}
    assert strategic_merge_patch(policy, {"spec": {"ingress": [{"ports": [{"port": 81}]}]}}) == {
        "spec": {"ingress": [{"ports": [{"port": 81}]}]}
    }
    replaced = strategic_merge_patch(POD, {"metadata": {"labels": {"$patch": "replace", "z": "9"}}})
    assert replaced["metadata"]["labels"] == {"z": "9"}
