"""Reading manifests: files, directories, stdin, multi-document YAML, JSON and List kinds."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from podnet.errors import ManifestError
from podnet.k8s.manifests import Document, load_documents, parse_text
from podnet.k8s.model import Source
from podnet.k8s.parse import load_cluster

POD_A = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
POD_B = "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\n"


def names(documents: list[Document]) -> list[tuple[str, str]]:
    return [(str(d.source), d.obj["metadata"]["name"]) for d in documents]


def load_error(paths: list[str], stdin: io.StringIO | None = None) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_documents(paths, stdin)
    return info.value.problems


def test_a_single_file(tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD_A)
    assert names(load_documents([str(f)])) == [(f"{f}[doc 0]", "a")]


def test_multi_document_yaml_keeps_the_index_of_each_document_and_skips_empty_ones(tmp_path: Path) -> None:
    f = tmp_path / "all.yaml"
    f.write_text("---\n" + POD_A + "---\n---\n# only a comment\n---\n" + POD_B + "---\n")
    assert names(load_documents([str(f)])) == [(f"{f}[doc 0]", "a"), (f"{f}[doc 3]", "b")]


def test_a_directory_is_read_recursively_in_name_order_and_only_yaml_yml_json(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "b.yml").write_text(POD_B)
    (tmp_path / "sub" / "deeper" / "c.json").write_text(json.dumps({"kind": "Pod", "metadata": {"name": "c"}}))
    (tmp_path / "sub" / "a.yaml").write_text(POD_A)
    (tmp_path / "notes.txt").write_text("kind: Pod\nmetadata: {name: txt}\n")
    (tmp_path / "README.md").write_text("# not a manifest: {{")
    (tmp_path / "sub" / "yaml").write_text("kind: Pod\nmetadata: {name: nosuffix}\n")
    got = names(load_documents([str(tmp_path)]))
    assert got == [
        (f"{tmp_path}/b.yml[doc 0]", "b"),
        (f"{tmp_path}/sub/a.yaml[doc 0]", "a"),
        (f"{tmp_path}/sub/deeper/c.json[doc 0]", "c"),
    ]


def test_an_explicit_file_is_read_whatever_its_suffix(tmp_path: Path) -> None:
    f = tmp_path / "pods.txt"
    f.write_text(POD_A)
    assert names(load_documents([str(f)])) == [(f"{f}[doc 0]", "a")]


def test_stdin_is_named_dash() -> None:
    assert names(load_documents(["-"], io.StringIO(POD_A + "---\n" + POD_B))) == [("-[doc 0]", "a"), ("-[doc 1]", "b")]


def test_several_paths_are_read_in_order(tmp_path: Path) -> None:
    one, two = tmp_path / "1.yaml", tmp_path / "2.yaml"
    one.write_text(POD_B)
    two.write_text(POD_A)
    got = names(load_documents([str(two), "-", str(one)], io.StringIO(POD_A.replace("name: a", "name: s"))))
    assert got == [(f"{two}[doc 0]", "a"), ("-[doc 0]", "s"), (f"{one}[doc 0]", "b")]


def test_json_file(tmp_path: Path) -> None:
    f = tmp_path / "pod.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}}, indent="\t"))
    assert names(load_documents([str(f)])) == [(f"{f}[doc 0]", "j")]


def test_a_stream_of_json_objects_is_several_documents() -> None:
    text = '{"kind": "Pod", "metadata": {"name": "a"}}\n\n{"kind": "Pod", "metadata": {"name": "b"}}\n'
    assert names(parse_text(text, "-")) == [("-[doc 0]", "a"), ("-[doc 1]", "b")]


def test_json_is_recognised_by_content_on_stdin() -> None:
    text = json.dumps({"kind": "PodList", "items": [{"kind": "Pod", "metadata": {"name": "a"}}]}, indent="\t")
    assert names(load_documents(["-"], io.StringIO(text))) == [("-[doc 0].items[0]", "a")]


def test_kind_list_is_flattened_with_the_item_index_in_the_source() -> None:
    text = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a}}
- {apiVersion: v1, kind: Pod, metadata: {name: b}}
"""
    assert names(parse_text(text, "l.yaml")) == [("l.yaml[doc 0].items[0]", "a"), ("l.yaml[doc 0].items[1]", "b")]


def test_typed_lists_and_nested_lists_are_flattened() -> None:
    text = """
kind: PodList
items:
- {kind: Pod, metadata: {name: a}}
---
kind: List
items:
- kind: NetworkPolicyList
  items:
  - {kind: NetworkPolicy, metadata: {name: np}}
- {kind: Pod, metadata: {name: b}}
"""
    assert names(parse_text(text, "l.yaml")) == [
        ("l.yaml[doc 0].items[0]", "a"),
        ("l.yaml[doc 1].items[0].items[0]", "np"),
        ("l.yaml[doc 1].items[1]", "b"),
    ]


def test_an_empty_list_gives_no_documents() -> None:
    assert parse_text("kind: List\nitems: []\n---\nkind: PodList\nitems: null\n", "l.yaml") == []


def test_a_list_whose_items_is_not_a_list_or_holds_a_non_object_is_an_error() -> None:
    with pytest.raises(ManifestError) as info:
        parse_text("kind: List\nitems: {a: 1}\n---\nkind: List\nitems: [3]\n", "l.yaml")
    assert info.value.problems == [
        "l.yaml[doc 0]: items: must be a list",
        "l.yaml[doc 1].items[0]: expected an object, got int",
    ]


def test_a_document_that_is_not_an_object_is_an_error() -> None:
    with pytest.raises(ManifestError) as info:
        parse_text("- a\n- b\n---\njust a string\n", "x.yaml")
    assert info.value.problems == [
        "x.yaml[doc 0]: expected an object, got list",
        "x.yaml[doc 1]: expected an object, got str",
    ]


def test_yaml_timestamps_stay_strings_as_in_kubernetes() -> None:
    [doc] = parse_text("kind: Pod\nmetadata:\n  name: a\n  labels: {released: 2024-01-31}\n", "x.yaml")
    assert doc.obj["metadata"]["labels"] == {"released": "2024-01-31"}


def test_invalid_yaml_names_the_file_and_the_document() -> None:
    with pytest.raises(ManifestError) as info:
        parse_text(POD_A + "---\nkind: Pod\nmetadata: {name: [unclosed\n", "bad.yaml")
    assert info.value.problems == [
        "bad.yaml[doc 1]: invalid YAML: line 7, column 1: expected ',' or ']', but got '<stream end>'"
    ]


def test_invalid_json_names_the_file_and_the_document(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{"kind": "Pod"}\n{"kind": ')
    [problem] = load_error([str(f)])
    assert problem.startswith(f"{f}[doc 1]: invalid JSON: ")


def test_a_missing_path_is_an_error() -> None:
    assert load_error(["/nonexistent/podnet-test.yaml"]) == ["/nonexistent/podnet-test.yaml: no such file or directory"]


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    f = tmp_path / "binary.yaml"
    f.write_bytes(b"kind: Pod\nmetadata: {name: \xff\xfe}\n")
    [problem] = load_error([str(f)])
    assert problem.startswith(f"{f}: cannot read: ")


def test_problems_of_every_path_are_reported_together(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(POD_A)
    bad.write_text("kind: [\n")
    got = load_error([str(bad), "/nonexistent/x.yaml", str(good), "-"], io.StringIO("- 1\n"))
    assert len(got) == 3
    assert got[0].startswith(f"{bad}[doc 0]: invalid YAML: ")
    assert got[1:] == ["/nonexistent/x.yaml: no such file or directory", "-[doc 0]: expected an object, got list"]


def test_sources_compare_by_file_document_and_item() -> None:
    assert Source("f", 1) == Source("f", 1, ())
    assert Source("f", 1).item_source(2) == Source("f", 1, (2,))
    assert str(Source("f", 1).item_source(2).item_source(0)) == "f[doc 1].items[2].items[0]"


def test_load_cluster_reads_stdin() -> None:
    cluster = load_cluster(["-"], io.StringIO(POD_A))
    assert [p.ref for p in cluster.pods] == ["default/a"]


def test_a_key_written_twice_is_an_error_not_silently_the_last_one() -> None:
    text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\nspec:\n"
    text += "  ingress: []\n  podSelector: {}\n  ingress: [{}]\n"
    with pytest.raises(ManifestError) as info:
        parse_text(text, "np.yaml")
    assert info.value.problems == [
        "np.yaml[doc 0]: invalid YAML: line 7, column 3: mapping key 'ingress' already defined"
    ]


def test_merge_keys_still_work() -> None:
    [doc] = parse_text("kind: Pod\nx: &base {a: 1, b: 2}\nmetadata:\n  <<: *base\n  b: 3\n  name: p\n", "m.yaml")
    assert doc.obj["metadata"] == {"a": 1, "b": 3, "name": "p"}


def test_a_kind_ending_in_list_without_items_is_an_ordinary_document() -> None:
    [doc] = parse_text("apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: x}\n", "a.yaml")
    assert doc.obj["kind"] == "AllowList" and doc.source == Source("a.yaml", 0)


def test_a_byte_order_mark_does_not_hide_a_json_stream(tmp_path: Path) -> None:
    f = tmp_path / "bom.json"
    f.write_bytes(
        b'\xef\xbb\xbf{"kind": "Pod", "metadata": {"name": "a"}}\n{"kind": "Pod", "metadata": {"name": "b"}}\n'
    )
    assert names(load_documents([str(f)])) == [(f"{f}[doc 0]", "a"), (f"{f}[doc 1]", "b")]
