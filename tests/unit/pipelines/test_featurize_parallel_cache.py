"""Parallel == serial, the on-disk cache, and streaming chunks == the one-shot result."""

from __future__ import annotations

import numpy as np
import pytest

import pipelines.featurize.parallel as parallel
from pipelines.catalog import load_embedded
from pipelines.featurize import FeatureCache, featurize_smiles, get_featurizer, iter_featurize
from pipelines.procs import process_pool


@pytest.fixture(scope="module")
def library() -> list[object]:
    smiles = load_embedded(["HLM_CLint", "MDR1_ER"])["smiles"].drop_duplicates().iloc[:150].tolist()
    smiles[7] = "not a smiles"
    smiles[50] = ""
    return smiles


def test_parallel_equals_serial(library):
    spec = "morgan_count+maccs+rdkit2d"
    serial = featurize_smiles(library[:80], spec=spec, n_jobs=1)
    par = featurize_smiles(library[:80], spec=spec, n_jobs=2, chunk_size=15)
    np.testing.assert_array_equal(par.X, serial.X)
    np.testing.assert_array_equal(par.valid, serial.valid)
    assert serial.valid.sum() == 78  # rows 7 and 50 are invalid


def test_cache_is_read_on_the_second_call(library, tmp_path, monkeypatch):
    first = featurize_smiles(library, spec="morgan_count+maccs", n_jobs=1, cache_dir=tmp_path)
    folders = sorted(p.name.split("-")[0] for p in tmp_path.iterdir())
    assert folders == ["maccs", "morgan_count"]

    computed: list[int] = []
    real_chunk = parallel.featurize_chunk

    def counting_chunk(smiles, names):
        computed.append(len(smiles))
        return real_chunk(smiles, names)

    monkeypatch.setattr(parallel, "featurize_chunk", counting_chunk)
    second = featurize_smiles(library, spec="morgan_count+maccs", n_jobs=1, cache_dir=tmp_path)
    assert computed == []  # nothing recomputed: everything, invalid rows included, came from disk
    np.testing.assert_array_equal(second.X, first.X)
    np.testing.assert_array_equal(second.valid, first.valid)

    # a reordered library with two new molecules: only the new ones are computed
    extra = ["CCOC(=O)c1ccccc1", "CCN(CC)CC"]
    third = featurize_smiles(extra + library[::-1], spec="morgan_count+maccs", n_jobs=1, cache_dir=tmp_path)
    assert sum(computed) == 2
    np.testing.assert_array_equal(third.X[2:], first.X[::-1])
    fresh = featurize_smiles(extra, spec="morgan_count+maccs", n_jobs=1)
    np.testing.assert_array_equal(third.X[:2], fresh.X)


def test_cache_keys_include_the_featurizer_config(tmp_path):
    from pipelines.featurize.fingerprints import MorganCountFeaturizer

    a = FeatureCache(tmp_path, MorganCountFeaturizer())
    b = FeatureCache(tmp_path, MorganCountFeaturizer(radius=3))
    assert a.folder != b.folder
    keys = np.array([1, 2, 3], dtype=np.uint64)
    assert a.store(keys, np.ones((3, 2048), np.uint8), np.ones(3, bool)) == 3
    assert a.store(keys, np.ones((3, 2048), np.uint8), np.ones(3, bool)) == 0  # already cached
    hit, _, _ = b.lookup(keys)
    assert not hit.any()
    hit, values, ok = FeatureCache(tmp_path, MorganCountFeaturizer()).lookup(np.array([3, 9], np.uint64))
    assert hit.tolist() == [True, False] and values.shape == (1, 2048) and ok.all()


def test_morgan_counts_are_stored_compactly_and_losslessly():
    feat = get_featurizer("morgan_count")
    small = feat.compact(np.array([[0, 3, 255]], dtype=np.uint32))
    large = feat.compact(np.array([[0, 300, 2]], dtype=np.uint32))
    assert small.dtype == np.uint8 and large.dtype == np.uint16
    assert large.tolist() == [[0, 300, 2]]


def test_streaming_chunks_concatenate_to_the_one_shot_result(library):
    whole = featurize_smiles(library, spec="morgan_count+maccs", n_jobs=1)
    pulled: list[int] = []

    def source():
        for i, smi in enumerate(library):
            pulled.append(i)
            yield smi

    chunks = []
    for chunk in iter_featurize(source(), spec="morgan_count+maccs", chunk_size=37, n_jobs=1):
        if not chunks:
            assert len(pulled) <= 37  # lazily read, not the whole input first
        chunks.append(chunk)
    assert [len(c) for c in chunks] == [37, 37, 37, 37, 2]
    np.testing.assert_array_equal(np.vstack([c.X for c in chunks]), whole.X)
    np.testing.assert_array_equal(np.concatenate([c.valid for c in chunks]), whole.valid)


def test_streaming_in_parallel_with_cache(library, tmp_path):
    whole = featurize_smiles(library, spec="maccs", n_jobs=1)
    for _ in range(2):  # cold, then warm
        chunks = list(iter_featurize(iter(library), spec="maccs", chunk_size=40, n_jobs=2, cache_dir=tmp_path))
        np.testing.assert_array_equal(np.vstack([c.X for c in chunks]), whole.X)


@pytest.mark.slow
def test_parallel_from_a_threaded_parent_uses_forkserver(library):
    """Prefect/Dask parents run threads: workers must then start without a plain fork."""
    import threading

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    helper.start()
    try:
        executor = process_pool(2, preload=parallel.PRELOAD)
        assert executor._mp_context.get_start_method() == "forkserver"
        executor.shutdown()
        par = featurize_smiles(library[:60], spec="maccs", n_jobs=2, chunk_size=20)
    finally:
        stop.set()
        helper.join()
    np.testing.assert_array_equal(par.X, featurize_smiles(library[:60], spec="maccs", n_jobs=1).X)
