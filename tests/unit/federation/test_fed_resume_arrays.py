"""A resumed run's starting arrays when the answering partners measure other endpoints than before
(a crashed site held the only labels of one): shared heads keep the checkpoint's trunk and the heads of
the endpoints still present; private heads (trunk only) must match exactly."""

from __future__ import annotations

import numpy as np
import pytest

from federation.stages import resume_arrays
from pipelines.errors import InputError


def _arrays(seed: float, tasks: list[str], width: int = 4) -> dict[str, np.ndarray]:
    out = {"trunk.0": np.full((width, 3), seed), "trunk.1": np.full(width, seed)}
    for t in tasks:
        out[f"head.{t}.weight"] = np.full((1, width), seed)
        out[f"head.{t}.bias"] = np.full(1, seed)
    return out


def test_shared_heads_keep_trunk_and_surviving_heads_and_start_new_ones_fresh():
    saved = _arrays(1.0, ["HLM", "only_partner_02", "solubility"])
    fresh = _arrays(0.0, ["HLM", "solubility", "new_endpoint"])
    got = resume_arrays(saved, fresh, "shared")
    assert list(got) == list(fresh)  # the resumed model's layout
    for key in ("trunk.0", "trunk.1", "head.HLM.weight", "head.solubility.bias"):
        np.testing.assert_array_equal(got[key], saved[key])
    np.testing.assert_array_equal(got["head.new_endpoint.weight"], fresh["head.new_endpoint.weight"])
    assert not any("only_partner_02" in k for k in got)


def test_an_unchanged_layout_is_the_checkpoint_itself():
    saved = _arrays(1.0, ["HLM"])
    assert resume_arrays(saved, _arrays(0.0, ["HLM"]), "private") is saved


def test_a_different_trunk_or_private_heads_layout_is_refused():
    with pytest.raises(InputError, match="checkpoint does not match"):
        resume_arrays(_arrays(1.0, ["HLM"], width=4), _arrays(0.0, ["HLM"], width=8), "shared")
    trunk_only = {k: v for k, v in _arrays(1.0, []).items()}
    with pytest.raises(InputError, match="checkpoint does not match"):
        resume_arrays(trunk_only, _arrays(0.0, ["HLM"]), "private")
