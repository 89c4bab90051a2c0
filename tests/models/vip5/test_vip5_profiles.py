"""User profiles in semantic codes (``model.user_profile``)."""

from __future__ import annotations

import pytest

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.ids import IdBuildConfig, build_ids
from mfmrec.models.vip5 import VIP5Config
from mfmrec.models.vip5.profiles import prefix_word, profile_depth, user_profiles
from mfmrec.models.vip5.prompts.inference import direct_prompts, sequential_prompts


@pytest.fixture(scope="module")
def prof_ids(demo_data):
    return build_ids(demo_data, "prof", IdBuildConfig(levels=2, codebook=4, features=["rand12"]))


def test_profiles_rank_prefixes_by_count_then_by_the_latest_purchase():
    codes = [(0, 1, 0), (0, 1, 1), (2, 3, 0), (1, 0, 0), (2, 3, 1)]
    seqs = [[0, 2, 1, 3], [3, 0], [], [2, 4, 0, 3]]
    # user 0: <a_0><b_1> twice; <a_2><b_3> and <a_1><b_0> once each, <a_1><b_0> later
    assert user_profiles(codes, seqs, 2, 2) == ["<a_0><b_1> <a_1><b_0>",
                                                "<a_0><b_1> <a_1><b_0>", "",
                                                "<a_2><b_3> <a_1><b_0>"]
    assert user_profiles(codes, seqs, 1, 1)[3] == "<a_2>"  # depth 1: item 2 and 4 share <a_2>
    assert prefix_word((5, 6, 7), 3) == "<a_5><b_6><c_7>"


def test_depth_zero_means_every_level_and_too_deep_is_refused():
    assert profile_depth(0, 3) == 3 and profile_depth(2, 3) == 2
    with pytest.raises(ConfigError, match="model.user_profile_depth"):
        profile_depth(4, 3)


def test_profiles_need_semantic_indexing():
    with pytest.raises(ConfigError, match="model.user_profile"):
        build(VIP5Config, {"user_profile": 2})


def test_profiles_follow_the_user_in_prompts_and_use_training_items_only(make_vip5, dataset,
                                                                         prof_ids,
                                                                         t5_tokenizer):
    model = make_vip5(t5_tokenizer, indexing="semantic:prof", image_tokens=1, user_profile=2)
    profiles = model.prompts.items.profiles
    assert len(profiles) == dataset.num_users
    # training items only: moving a user's test item into the profile's count changes nothing
    expect = user_profiles(prof_ids.codes, dataset.train_sequences, 2, 2)
    assert profiles == expect
    users, hists, _ = dataset.targets("test")
    seq = sequential_prompts(model.prompts, users[:2], hists[:2], "A-3")
    cands = dataset.candidates("test")
    direct = direct_prompts(model.prompts, cands.users[:2], cands.items[:2, :5], "B-5")
    for s, u in zip(seq, users[:2], strict=True):
        assert f"user_{int(u) + 1} {profiles[u]} :" in s.text
    for s, u in zip(direct, cands.users[:2], strict=True):
        assert f"{dataset.user_names[u]} {profiles[u]} ?" in s.text
    # the profile words are the items' own code tokens: nothing new in the vocabulary
    plain = make_vip5(t5_tokenizer, indexing="semantic:prof", image_tokens=1)
    assert len(plain.tokenizer) == len(model.tokenizer)
    # training prompts carry them too (the profile of two words is never in a plain prompt)
    with_profile = model.train_data(dataset, "train", seed=0)
    without = plain.train_data(dataset, "train", seed=0)
    two = {p for p in profiles if " " in p}
    texts = [with_profile[i].text for i in range(len(with_profile))]
    assert sum(any(p in t for p in two) for t in texts) > len(texts) // 2
    assert not any(any(p in without[i].text for p in two) for i in range(len(without)))
