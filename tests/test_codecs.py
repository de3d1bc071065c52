"""Every text form of a genome: the references parse to the presets, and all forms round-trip."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from space import Genome, GenomeError, parse_genome, preset
from space.codecs import (decode_arch_def, decode_canonical_block, decode_tf_block, encode_arch_def,
                          encode_canonical_block, encode_tf_block, genome_from_blocks, genome_from_document,
                          genome_to_dict, genome_to_yaml, to_tf_strings)
from space.search_space import SearchSpace

HERE = Path(__file__).parent
REFERENCE = yaml.safe_load((HERE / "data" / "mixnet_reference.yaml").read_text())
SPACE = SearchSpace.from_yaml(HERE.parent / "configs" / "space" / "mixnet_s.yaml")


@pytest.mark.parametrize("name,target", [("tf_mixnet_s", "mixnet_s"), ("tf_mixnet_m", "mixnet_m"),
                                         ("timm_mixnet_s", "mixnet_s"), ("timm_mixnet_m", "mixnet_m")])
def test_reference_strings_parse_to_presets(name: str, target: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(REFERENCE[name]))
    assert parse_genome(str(path)) == preset(target)


def test_reference_block_lists_encode_back_exactly() -> None:
    assert to_tf_strings(preset("mixnet_s")) == REFERENCE["tf_mixnet_s"]["blocks"]
    assert to_tf_strings(preset("mixnet_m")) == REFERENCE["tf_mixnet_m"]["blocks"]
    assert encode_arch_def(preset("mixnet_s").blocks) == REFERENCE["timm_mixnet_s"]["blocks"]
    assert encode_arch_def(preset("mixnet_m").blocks) == REFERENCE["timm_mixnet_m"]["blocks"]


def test_plain_list_files_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(REFERENCE["tf_mixnet_s"]["blocks"]))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(REFERENCE["timm_mixnet_s"]["blocks"]))
    assert parse_genome(str(tmp_path / "s.json")) == preset("mixnet_s")
    assert parse_genome(str(tmp_path / "s.yaml")) == preset("mixnet_s")


def test_mixnet_l_is_m_at_width_1_3() -> None:
    large = preset("mixnet_l")
    assert large.blocks == preset("mixnet_m").blocks and large.width == 1.3
    chans = [(lay.in_channels, lay.out_channels) for lay in large.layers()]
    assert large.stem_out == 32 and chans[0] == (32, 32) and chans[-1] == (264, 264)
    assert [lay.se_channels for lay in large.layers()][3:8] == [20, 28, 28, 28, 14]


def round_trips(genome: Genome) -> None:
    """Assert the genome survives every text form."""
    norm = genome.normalized()
    assert parse_genome(genome.to_string()) == norm
    assert genome_from_document(yaml.safe_load(genome_to_yaml(genome)), "yaml") == genome
    assert genome_from_document(json.loads(json.dumps(genome_to_dict(genome))), "json") == genome
    globals_ = {k: getattr(genome, k) for k in ("stem_channels", "head_channels", "width", "dropout",
                                                "num_classes")}
    assert genome_from_blocks(to_tf_strings(genome), **globals_) == genome
    assert genome_from_blocks(encode_arch_def(genome.blocks), **globals_) == genome
    for n, gene in enumerate(genome.blocks, start=1):
        assert decode_tf_block(encode_tf_block(gene, n), n) == gene
        assert decode_canonical_block(encode_canonical_block(gene), n) == gene
    assert decode_arch_def(encode_arch_def(genome.blocks), genome.stem_channels) == list(genome.blocks)


@pytest.mark.parametrize("name", ["mixnet_s", "mixnet_m", "mixnet_l"])
def test_presets_round_trip(name: str) -> None:
    round_trips(preset(name))


def test_200_random_space_genomes_round_trip() -> None:
    rng = random.Random(7)
    keys = set()
    for _ in range(200):
        genome = SPACE.random_genome(rng)
        round_trips(genome)
        assert SPACE.contains(genome)
        keys.add(genome.key())
    assert len(keys) == 200


def test_canonical_form_is_unique_per_network() -> None:
    s = preset("mixnet_s")
    split = s.with_changes(blocks=tuple(s.single_genes()))
    assert split != s and split.to_string() == s.to_string() and split.key() == s.key()
    assert preset("mixnet_m").key() != s.key()


def test_se_activation_only_in_canonical_and_yaml() -> None:
    s = preset("mixnet_s")
    relu_se = s.with_changes(blocks=tuple(g.with_changes(se_act="relu") for g in s.blocks))
    assert "sere" in relu_se.to_string() and parse_genome(relu_se.to_string()) == relu_se
    with pytest.raises(GenomeError, match="SE activation"):
        to_tf_strings(relu_se)


@pytest.mark.parametrize("text,message", [
    ("r1_k3.4_a1_p1_s11_e1_i16_o16", "block 1: token 'k3.4' - kernel sizes must be odd integers >= 3"),
    ("r1_k3_a1_p1_s12_e1_i16_o16", "block 1: token 's12' - stride must be one of s11, s22"),
    ("r1_k3_a2_p1_s11_e6_i16_o16", "block 1: token 'a2' - expansion conv kernels must be 1"),
    ("r1_k3_a1_p1_s11_e1_i16_o16_zz9", "block 1: token 'zz9' - unknown token"),
    ("r1_k3_a1_p1_s11_i16_o16", "block 1: 'r1_k3_a1_p1_s11_i16_o16' has no 'e' token"),
    ("r1_k3_a1_p1_s11_e1_i16_o16,r1_k3_a1_p1_s11_e6_i24_o24", "block 2: input channels 24 do not match 16"),
    ("ir_r1_k3_s1_e1_c16", "an ir block with e1"),
    ("xx_r1_k3_s1_e1_c16", "unknown preset 'xx_r1_k3_s1_e1_c16'"),
])
def test_malformed_genomes_name_block_and_token(text: str, message: str) -> None:
    with pytest.raises(GenomeError) as err:
        parse_genome(text)
    assert message in str(err.value)


def test_missing_file_and_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(GenomeError, match="genome file 'nope.yaml' not found"):
        parse_genome("nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"stem_chanels": 16, "blocks": ["r1_k3_a1_p1_s11_e1_i16_o16"]}))
    with pytest.raises(GenomeError, match="did you mean stem_channels"):
        parse_genome(str(bad))
