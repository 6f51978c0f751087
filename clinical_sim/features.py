"""Trial feature matrix: drugs, ADMET predictions, ICD-10 hierarchy, criteria text, phase and counts.

``TrialFeaturizer.fit_transform(trials, y)`` learns the text vocabularies/SVDs and the target encodings on
the training rows only (target encodings out-of-fold, so a row never sees its own label);
``transform(trials)`` applies them to new trials. ``trials`` is ``TrialTable.trials`` (parsed lists).
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold

from clinical_sim import icd10
from clinical_sim.admet_link import AdmetPredictor, pk_table, predict_drugs
from clinical_sim.criteria import CRITERIA_FEATURES, criteria_numeric, split_criteria
from clinical_sim.drug_features import DESCRIPTOR_NAMES, DrugFeaturizer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FeatureConfig:
    """What goes into the trial feature matrix."""

    fp_bits: int = 256
    """Morgan bits per trial (OR over drugs); 0 switches fingerprints off."""
    text_components: int = 24
    """SVD components for each of inclusion / exclusion TF-IDF (0 = off)."""
    disease_components: int = 8
    """SVD components of the disease-name TF-IDF (0 = off)."""
    target_encoding: bool = True
    """Out-of-fold smoothed success rate of ICD category/block/chapter, drug and disease names."""
    te_smoothing: float = 10.0
    """Prior weight (pseudo-trials) of the target-encoding shrinkage to the global rate."""
    te_folds: int = 5
    use_admet: bool = True
    """Aggregate the ADMET predictions (and derived PK) of each trial's drugs (needs a predictor)."""
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _keys(row: pd.Series) -> dict[str, list[str]]:
    codes = row["icd_list"]
    return {
        "icd_cat": sorted({c for c in (icd10.category(x) for x in codes) if c}),
        "icd_block": sorted({c for c in (icd10.block(x) for x in codes) if c}),
        "icd_chapter": sorted({c for c in (icd10.chapter(x) for x in codes) if c}),
        "drug": sorted({d.lower().strip() for d in row["drug_list"]}),
        "disease": sorted({d.lower().strip() for d in row["disease_list"]}),
    }


@dataclass
class _TargetEncoder:
    """Smoothed per-key success rates; a trial gets mean / max / min over its keys plus a known-key count."""

    smoothing: float
    prior: float = 0.5
    stats: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def fit(self, keys: list[dict[str, list[str]]], y: np.ndarray) -> "_TargetEncoder":
        self.prior = float(np.mean(y))
        self.stats = {}
        sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
        for k, label in zip(keys, y):
            for kind, values in k.items():
                for v in values:
                    acc = sums[kind][v]
                    acc[0] += label
                    acc[1] += 1
        for kind, table in sums.items():
            self.stats[kind] = {v: (s, n) for v, (s, n) in table.items()}
        return self

    def encode(self, keys: list[dict[str, list[str]]], kinds: list[str]) -> np.ndarray:
        out = np.full((len(keys), 4 * len(kinds)), np.nan)
        a = self.smoothing
        for i, k in enumerate(keys):
            for j, kind in enumerate(kinds):
                table = self.stats.get(kind, {})
                rates, counts = [], []
                for v in k.get(kind, []):
                    s, n = table.get(v, (0.0, 0.0))
                    rates.append((s + a * self.prior) / (n + a))
                    counts.append(n)
                if rates:
                    out[i, 4 * j:4 * j + 4] = [np.mean(rates), np.max(rates), np.min(rates), np.log1p(np.sum(counts))]
                else:
                    out[i, 4 * j:4 * j + 4] = [self.prior, self.prior, self.prior, 0.0]
        return out


_TE_KINDS = ["icd_cat", "icd_block", "icd_chapter", "drug", "disease"]


class TrialFeaturizer:
    """Fit on training trials, then transform any trial table into a float feature DataFrame."""

    def __init__(self, config: FeatureConfig | None = None, admet: AdmetPredictor | None = None) -> None:
        self.config = config or FeatureConfig()
        self.admet = admet
        self.drugs = DrugFeaturizer(n_bits=max(self.config.fp_bits, 8))
        self._tfidf: dict[str, TfidfVectorizer] = {}
        self._svd: dict[str, TruncatedSVD] = {}
        self._te: _TargetEncoder | None = None
        self._admet_columns: list[str] = []
        self._admet_cache: pd.DataFrame | None = None
        self.feature_names: list[str] = []

    # ---- text -------------------------------------------------------------------------------------
    def _texts(self, trials: pd.DataFrame) -> dict[str, list[str]]:
        parts = [split_criteria(t) for t in trials["criteria"].tolist()]
        return {
            "incl": [p.inclusion.lower() for p in parts],
            "excl": [p.exclusion.lower() for p in parts],
            "dis": [" ".join(d) for d in trials["disease_list"]],
        }

    def _fit_text(self, texts: dict[str, list[str]]) -> None:
        sizes = {"incl": self.config.text_components, "excl": self.config.text_components,
                 "dis": self.config.disease_components}
        for name, k in sizes.items():
            if k <= 0:
                continue
            vec = TfidfVectorizer(min_df=2, max_features=20000, ngram_range=(1, 2), sublinear_tf=True,
                                  stop_words="english")
            try:
                m = vec.fit_transform(texts[name])
            except ValueError:  # empty vocabulary (tiny or empty text)
                continue
            k = min(k, m.shape[1] - 1, m.shape[0] - 1)
            if k < 1:
                continue
            self._tfidf[name] = vec
            self._svd[name] = TruncatedSVD(n_components=k, random_state=self.config.seed).fit(m)

    def _text_block(self, texts: dict[str, list[str]]) -> tuple[np.ndarray, list[str]]:
        blocks, names = [], []
        for name, vec in self._tfidf.items():
            z = self._svd[name].transform(vec.transform(texts[name]))
            blocks.append(z)
            names += [f"text_{name}_{i}" for i in range(z.shape[1])]
        return (np.hstack(blocks) if blocks else np.zeros((len(texts["incl"]), 0))), names

    # ---- ADMET ------------------------------------------------------------------------------------
    def _admet_block(self, trials: pd.DataFrame, fit: bool) -> tuple[np.ndarray, list[str]]:
        if not (self.config.use_admet and self.admet is not None):
            return np.zeros((len(trials), 0)), []
        all_smiles = list(dict.fromkeys(s for lst in trials["smiles_list"] for s in lst))
        cache = getattr(self, "_admet_cache", None)
        todo = [s for s in all_smiles if cache is None or s not in cache.index]
        if todo:
            fresh = predict_drugs(self.admet, todo)
            cache = fresh if cache is None else pd.concat([cache, fresh])
            self._admet_cache = cache
        values = cache.reindex([s for s in all_smiles if s in cache.index]) if cache is not None else pd.DataFrame()
        if values.empty:
            return np.zeros((len(trials), 0)), []
        logp = np.array([self.drugs.drug(s)[1][DESCRIPTOR_NAMES.index("logp")] for s in values.index])
        pk = pk_table(values, logp)
        pk["log_cl_l_h"] = np.log10(pk.pop("cl_l_h"))
        pk["log_v_l"] = np.log10(pk.pop("v_l"))
        per_drug = pd.concat([values, pk.add_prefix("pk_")], axis=1)
        if fit:
            self._admet_columns = list(per_drug.columns)
        per_drug = per_drug.reindex(columns=self._admet_columns)
        n_cols = len(self._admet_columns)
        out = np.full((len(trials), 3 * n_cols), np.nan)
        lookup = {s: i for i, s in enumerate(per_drug.index)}
        arr = per_drug.to_numpy(float)
        for i, lst in enumerate(trials["smiles_list"]):
            idx = [lookup[s] for s in lst if s in lookup]
            if not idx:
                continue
            d = arr[idx]
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[i] = np.concatenate([np.nanmean(d, 0), np.nanmin(d, 0), np.nanmax(d, 0)])
        names = [f"admet_{stat}_{c}" for stat in ("mean", "min", "max") for c in self._admet_columns]
        return out, names

    # ---- assembly ---------------------------------------------------------------------------------
    def _base(self, trials: pd.DataFrame) -> tuple[list[np.ndarray], list[str]]:
        blocks, names = [], []
        crit = np.vstack([criteria_numeric(t) for t in trials["criteria"].tolist()]) if len(trials) else \
            np.zeros((0, len(CRITERIA_FEATURES)))
        blocks.append(crit)
        names += list(CRITERIA_FEATURES)
        counts = np.column_stack([
            trials["phase_num"].to_numpy(float),
            [len(x) for x in trials["drug_list"]], [len(x) for x in trials["smiles_list"]],
            [len(x) for x in trials["disease_list"]], [len(x) for x in trials["icd_list"]],
            [self.drugs.n_valid(x) for x in trials["smiles_list"]],
        ])
        blocks.append(counts)
        names += ["phase_num", "n_drugs", "n_smiles", "n_diseases", "n_icd", "n_valid_smiles"]
        chap = np.zeros((len(trials), len(icd10.CHAPTER_IDS)))
        for i, codes in enumerate(trials["icd_list"]):
            for c in codes:
                ch = icd10.chapter(c)
                if ch:
                    chap[i, icd10.CHAPTER_IDS.index(ch)] += 1
        blocks.append(chap)
        names += [f"icd_chapter_{c}" for c in icd10.CHAPTER_IDS]
        bits, desc, desc_names = self.drugs.trials(list(trials["smiles_list"]))
        blocks.append(desc)
        names += desc_names
        if self.config.fp_bits > 0:
            blocks.append(bits[:, : self.config.fp_bits].astype(float))
            names += [f"fp_{i}" for i in range(self.config.fp_bits)]
        return blocks, names

    def fit_transform(self, trials: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
        y = np.asarray(y, dtype=float)
        texts = self._texts(trials)
        self._fit_text(texts)
        blocks, names = self._base(trials)
        text, text_names = self._text_block(texts)
        blocks.append(text)
        names += text_names
        if self.config.target_encoding:
            keys = [_keys(r) for _, r in trials.iterrows()]
            oof = np.zeros((len(trials), 4 * len(_TE_KINDS)))
            n_splits = max(2, min(self.config.te_folds, int(min(np.bincount(y.astype(int), minlength=2)))))
            folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.config.seed)
            for tr, va in folds.split(np.zeros(len(y)), y.astype(int)):
                enc = _TargetEncoder(self.config.te_smoothing).fit([keys[i] for i in tr], y[tr])
                oof[va] = enc.encode([keys[i] for i in va], _TE_KINDS)
            self._te = _TargetEncoder(self.config.te_smoothing).fit(keys, y)
            blocks.append(oof)
            names += self._te_names()
        admet, admet_names = self._admet_block(trials, fit=True)
        blocks.append(admet)
        names += admet_names
        self.feature_names = names
        return pd.DataFrame(np.hstack(blocks), columns=names, index=trials.index)

    @staticmethod
    def _te_names() -> list[str]:
        return [f"te_{k}_{s}" for k in _TE_KINDS for s in ("mean", "max", "min", "logn")]

    def transform(self, trials: pd.DataFrame) -> pd.DataFrame:
        if not self.feature_names:
            raise RuntimeError("TrialFeaturizer.transform called before fit_transform")
        texts = self._texts(trials)
        blocks, names = self._base(trials)
        text, text_names = self._text_block(texts)
        blocks.append(text)
        names += text_names
        if self._te is not None:
            blocks.append(self._te.encode([_keys(r) for _, r in trials.iterrows()], _TE_KINDS))
            names += self._te_names()
        admet, admet_names = self._admet_block(trials, fit=False)
        blocks.append(admet)
        names += admet_names
        frame = pd.DataFrame(np.hstack(blocks), columns=names, index=trials.index)
        return frame.reindex(columns=self.feature_names)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["admet"] = None  # the predictor is re-attached at load time (it lives in its own folder)
        state["_admet_cache"] = None
        state["drugs"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.drugs = DrugFeaturizer(n_bits=max(self.config.fp_bits, 8))
