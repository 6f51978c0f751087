"""RDKit 2D descriptors with shared intermediates computed once, equal to ``Descriptors.descList``.

The naive loop (``for name, fn in Descriptors.descList: fn(mol)``) recomputes shared pieces:
the E-state indices six times (each ``Max/MinEStateIndex`` forces a fresh O(n^2) Python loop),
the Crippen descriptors twice (``MolLogP``, ``MolMR``), once more inside QED on a hydrogen-stripped
copy and once more inside ``BCUT2D`` (with the Gasteiger charges again), the characteristic
polynomial twice (``Ipc``, ``AvgIpc``), QED's weight, TPSA and donors again, and one Python-level
substructure call per pattern for the 85 ``fr_*`` counts, QED's 116 alerts and 11 acceptors.

What RDKit already caches on the molecule when every function gets the *same* object: the
Gasteiger charge extremes (``_chargeDescriptors``), the eight BCUT2D values (``__BCUT2D``), the
Morgan fingerprints behind ``FpDensityMorgan*``, the Labute and Crippen atom contributions used by
the ``SMR_VSA``/``SlogP_VSA``/``PEOE_VSA`` bins (C++ molecule properties), the distance matrices
(``_adjMat``, ``_balabanMat``) and the EState/VSA bins.

:func:`descriptors_2d` computes the shared pieces once: E-state indices (vectorised), Crippen,
Gasteiger charges, the characteristic polynomial, Balaban's J (vectorised), BCUT2D (one batched
eigen-decomposition over the shared charges and Crippen contributions), SpacialScore (one pass),
QED from the shared inputs; all SMARTS patterns go through one ``FilterCatalog`` call that says
which match at all, and only those are counted. Every other descriptor is RDKit's own function,
called in ``descList`` order on the same molecule. Shortcuts that rely on QED's/BCUT's
hydrogen-stripped copy being the same graph are only taken for molecules without hydrogen atoms.
Values equal the naive loop's to floating-point round-off (tests check 1e-6 on real molecules, NaN
where NaN); if a shared step fails, every descriptor falls back to RDKit's own function.

Measured per core (CPU time, shared 2-core machine): about 1.2-1.3x the naive loop. What remains
is RDKit's C++ work that nothing shares: substructure matching (~1 ms/molecule for the ~210
patterns), Crippen typing, ``BertzCT``, the Chi/Kappa path enumerations and ring/stereo perception.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from rdkit import Chem
from rdkit.Chem import QED, Descriptors, Fragments, Graphs, rdMolDescriptors, rdPartialCharges
from rdkit.Chem.EState import EState
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogEntry, SmartsMatcher
from rdkit.ML.InfoTheory import entropy

log = logging.getLogger(__name__)

#: Names of the descriptors, in RDKit's ``Descriptors.descList`` order.
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(name for name, _ in Descriptors.descList)
_FUNCTIONS = tuple(fn for _, fn in Descriptors.descList)
_PTABLE = Chem.GetPeriodicTable()
_STRICT = rdMolDescriptors.NumRotatableBondsOptions.Strict


def naive_descriptors_2d(mol: Chem.Mol) -> np.ndarray:
    """The reference: RDKit's own loop over ``descList`` (failures -> NaN), as float64."""
    out = np.empty(len(_FUNCTIONS), dtype=np.float64)
    for i, fn in enumerate(_FUNCTIONS):
        try:
            out[i] = fn(mol)
        except Exception:  # noqa: BLE001 - RDKit's CalcMolDescriptors does the same
            out[i] = np.nan
    return out


class _PatternScreen:
    """All descriptor SMARTS in one ``FilterCatalog``: one C++ call says which patterns match."""

    def __init__(self) -> None:
        self.catalog = FilterCatalog()
        self.patterns: list[Chem.Mol] = []
        self.fragment_slots: dict[str, int] = {}
        fragment_names = {name for name in DESCRIPTOR_NAMES if name.startswith("fr_")}
        seen: dict[str, int] = {}
        for name, fn in Fragments.fns:
            if name not in fragment_names:
                continue
            pattern = fn.__defaults__[1]  # (countUnique, pattern) default arguments
            smarts = Chem.MolToSmarts(pattern)
            if smarts not in seen:  # fr_Ar_NH and fr_Nhpyrrole share one SMARTS
                seen[smarts] = self._add(pattern)
            self.fragment_slots[name] = seen[smarts]
        self.alert_slots = [self._add(p) for p in QED.StructuralAlerts]
        self.acceptor_slots = [self._add(p) for p in QED.Acceptors]

    def _add(self, pattern: Chem.Mol) -> int:
        slot = len(self.patterns)
        self.patterns.append(pattern)
        self.catalog.AddEntry(FilterCatalogEntry(str(slot), SmartsMatcher(str(slot), pattern, 1)))
        return slot

    def matching(self, mol: Chem.Mol) -> set[int]:
        return {int(entry.GetDescription()) for entry in self.catalog.GetMatches(mol)}


_SCREEN: _PatternScreen | None = None


def _screen() -> _PatternScreen:
    global _SCREEN
    if _SCREEN is None:
        _SCREEN = _PatternScreen()
    return _SCREEN


def estate_indices(mol: Chem.Mol) -> np.ndarray:
    """``EState.EStateIndices`` with the O(n^2) pair loop vectorised (same formula, same inputs)."""
    n = mol.GetNumAtoms()
    intrinsic = np.zeros(n, dtype=np.float64)
    for i in range(n):
        atom = mol.GetAtomWithIdx(i)
        degree = atom.GetDegree()
        if degree > 0:
            z = atom.GetAtomicNum()
            dv = _PTABLE.GetNOuterElecs(z) - atom.GetTotalNumHs()
            pqn = EState.GetPrincipleQuantumNumber(z)
            intrinsic[i] = (4.0 / (pqn * pqn) * dv + 1) / degree
    dists = Chem.GetDistanceMatrix(mol, useBO=False, useAtomWts=False) + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (intrinsic[:, None] - intrinsic[None, :]) / (dists * dists)
    terms[dists >= 1e6] = 0.0
    np.fill_diagonal(terms, 0.0)
    return terms.sum(axis=1) + intrinsic


def _atom_pass(mol: Chem.Mol, values: dict[str, float]) -> bool:
    """Per-atom sums in one pass; returns whether the graph holds hydrogen atoms."""
    valence = 0
    radicals = 0
    has_h = False
    for i in range(mol.GetNumAtoms()):
        atom = mol.GetAtomWithIdx(i)
        z = atom.GetAtomicNum()
        has_h = has_h or z == 1
        valence += _PTABLE.GetNOuterElecs(z) - atom.GetFormalCharge() + atom.GetTotalNumHs()
        radicals += atom.GetNumRadicalElectrons()
    values["NumValenceElectrons"] = valence
    values["NumRadicalElectrons"] = radicals
    return has_h


def _estate(mol: Chem.Mol, values: dict[str, float]) -> None:
    estate = estate_indices(mol)
    mol._eStateIndices = estate  # EState_VSA / VSA_EState read it with force=False
    if len(estate):
        magnitude = np.abs(estate)
        values["MaxEStateIndex"] = float(estate.max())
        values["MinEStateIndex"] = float(estate.min())
        values["MaxAbsEStateIndex"] = float(magnitude.max())
        values["MinAbsEStateIndex"] = float(magnitude.min())


def _charges(mol: Chem.Mol) -> None:
    """Gasteiger extremes exactly as ``Descriptors._ChargeDescriptors`` caches them."""
    rdPartialCharges.ComputeGasteigerCharges(mol)
    low, high = 500.0, -500.0
    for i in range(mol.GetNumAtoms()):
        charge = float(mol.GetAtomWithIdx(i).GetProp("_GasteigerCharge"))
        low = min(charge, low)
        high = max(charge, high)
    mol._chargeDescriptors = (low, high)


def _ipc(mol: Chem.Mol, values: dict[str, float]) -> None:
    dmat = Chem.GetDistanceMatrix(mol, False)
    mol._adjMat = dmat  # what Ipc/AvgIpc would cache
    cpoly = abs(Graphs.CharacteristicPolynomial(mol, np.equal(dmat, 1)))
    info = entropy.InfoEntropy(cpoly)
    values["AvgIpc"] = info
    values["Ipc"] = sum(cpoly) * info


def _balaban(mol: Chem.Mol, values: dict[str, float]) -> None:
    bmat = Chem.GetDistanceMatrix(mol, useBO=True, useAtomWts=False, force=False, prefix="Balaban")
    mol._balabanMat = bmat  # BertzCT reuses it
    s = bmat.sum(axis=0)
    q = mol.GetNumBonds()
    mu = q - mol.GetNumAtoms() + 1
    if mu + 1 != 0 and q:
        begin = np.fromiter((b.GetBeginAtomIdx() for b in mol.GetBonds()), dtype=np.int64, count=q)
        end = np.fromiter((b.GetEndAtomIdx() for b in mol.GetBonds()), dtype=np.int64, count=q)
        values["BalabanJ"] = float(q) / float(mu + 1) * float(np.sum(1.0 / np.sqrt(s[begin] * s[end])))
    elif mu + 1 == 0:
        values["BalabanJ"] = 0


def _patterns(mol: Chem.Mol, values: dict[str, float], with_qed_patterns: bool) -> tuple[int, int]:
    """``fr_*`` counts; also QED's acceptor count and alert count (used when QED is shared)."""
    screen = _screen()
    hits = screen.matching(mol)
    counts: dict[int, int] = {}
    for name, slot in screen.fragment_slots.items():
        if slot not in hits:
            values[name] = 0
            continue
        if slot not in counts:
            counts[slot] = len(mol.GetSubstructMatches(screen.patterns[slot], uniquify=True))
        values[name] = counts[slot]
    if not with_qed_patterns:
        return 0, 0
    hba = sum(
        len(mol.GetSubstructMatches(screen.patterns[slot]))
        for slot in screen.acceptor_slots if slot in hits
    )
    alerts = sum(1 for slot in screen.alert_slots if slot in hits)
    return hba, alerts


def _qed(mol: Chem.Mol, values: dict[str, float], logp: float, hba: int, alerts: int) -> None:
    """QED from shared inputs; QED itself works on ``RemoveHs(mol)``, which is this very graph
    when the molecule holds no hydrogen atoms (the only case the caller uses this for)."""
    mw = rdMolDescriptors._CalcMolWt(mol)
    tpsa = rdMolDescriptors.CalcTPSA(mol)
    values["MolWt"] = mw
    values["TPSA"] = tpsa
    props = QED.QEDproperties(
        MW=mw,
        ALOGP=logp,
        HBA=hba,
        HBD=rdMolDescriptors.CalcNumHBD(mol),
        PSA=tpsa,
        ROTB=rdMolDescriptors.CalcNumRotatableBonds(mol, _STRICT),
        AROM=len(Chem.GetSSSR(Chem.DeleteSubstructs(Chem.Mol(mol), QED.AliphaticRings))),
        ALERTS=alerts,
    )
    values["qed"] = QED.qed(mol, qedProperties=props)


_BCUT_NAMES = ("BCUT2D_MWHI", "BCUT2D_MWLOW", "BCUT2D_CHGHI", "BCUT2D_CHGLO",
               "BCUT2D_LOGPHI", "BCUT2D_LOGPLOW", "BCUT2D_MRHI", "BCUT2D_MRLOW")
_BURDEN_BOND = {  # RDKit BCUT.cpp: 1/sqrt(bond order); other bond types are an error there
    Chem.BondType.SINGLE: 1.0,
    Chem.BondType.DOUBLE: 0.7071067811865475,
    Chem.BondType.TRIPLE: 0.5773502691896258,
    Chem.BondType.AROMATIC: 0.8164965809277261,
}


def _bcut(mol: Chem.Mol, values: dict[str, float]) -> None:
    """RDKit's ``BCUT2D`` (mass, Gasteiger charge, Crippen logP and MR Burden eigenvalues) from
    the Gasteiger charges and Crippen contributions computed once for the molecule.

    RDKit works on ``RemoveAllHs(mol)``; the caller uses this only for molecules without hydrogen
    atoms, where that copy is the same graph. Any failure gives NaN, as RDKit's wrapper does.
    """
    n = mol.GetNumAtoms()
    if n == 0:
        for name in _BCUT_NAMES:
            values[name] = 0.0
        return
    try:
        rdPartialCharges.ComputeGasteigerCharges(mol, 12, True)
        burden = np.full((n, n), 0.001)
        for bond in mol.GetBonds():
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            burden[i, j] = burden[j, i] = _BURDEN_BOND[bond.GetBondType()]
        atoms = [mol.GetAtomWithIdx(i) for i in range(n)]
        contribs = np.asarray(rdMolDescriptors._CalcCrippenContribs(mol), dtype=np.float64)
        props = np.array([
            [a.GetMass() for a in atoms],
            [a.GetDoubleProp("_GasteigerCharge") for a in atoms],
            contribs[:, 0],
            contribs[:, 1],
        ])
    except Exception:  # noqa: BLE001 - missing Gasteiger parameters, unusual bond types
        for name in _BCUT_NAMES:
            values[name] = math.nan
        return
    stack = np.repeat(burden[None], 4, axis=0)
    diag = np.arange(n)
    stack[:, diag, diag] = props
    eig = np.linalg.eigvalsh(stack)
    for k in range(4):
        values[_BCUT_NAMES[2 * k]] = float(eig[k, -1])
        values[_BCUT_NAMES[2 * k + 1]] = float(eig[k, 0])


_SPS_HYBRIDISATION = {
    Chem.HybridizationType.SP: 1,
    Chem.HybridizationType.SP2: 2,
    Chem.HybridizationType.SP3: 3,
}


def _sps(mol: Chem.Mol) -> float:
    """``SpacialScore.SPS`` (normalised) with the same per-atom integer terms, in one pass."""
    copy = Chem.Mol(mol)
    Chem.rdmolops.FindPotentialStereoBonds(copy)
    stereo_atoms = {
        idx for idx, _ in Chem.FindMolChiralCenters(
            copy, includeUnassigned=True, includeCIP=False, useLegacyImplementation=False)
    }
    for bond in copy.GetBonds():
        if bond.GetBondType() == Chem.BondType.DOUBLE and bond.GetStereo() != Chem.BondStereo.STEREONONE:
            stereo_atoms.add(bond.GetBeginAtomIdx())
            stereo_atoms.add(bond.GetEndAtomIdx())
    score = 0
    for i in range(copy.GetNumAtoms()):
        atom = copy.GetAtomWithIdx(i)
        hybrid = _SPS_HYBRIDISATION.get(atom.GetHybridization(), 4)
        stereo = 2 if i in stereo_atoms else 1
        ring = 1 if atom.GetIsAromatic() else (2 if atom.IsInRing() else 1)
        degree = atom.GetDegree()
        score += hybrid * stereo * ring * degree**2
    return score / copy.GetNumHeavyAtoms()


def _cheap_shared(mol: Chem.Mol, values: dict[str, float]) -> tuple[bool, float]:
    """The intermediates both descriptor sets share: atom sums, E-state, Crippen, Gasteiger
    extremes, Balaban's J. Returns (graph holds hydrogen atoms, MolLogP)."""
    has_h = _atom_pass(mol, values)
    _estate(mol, values)
    logp, mr = rdMolDescriptors.CalcCrippenDescriptors(mol)
    values["MolLogP"] = logp
    values["MolMR"] = mr
    _charges(mol)
    _balaban(mol, values)
    return has_h, logp


def _shared_values(mol: Chem.Mol) -> dict[str, float]:
    """Descriptors whose shared intermediates are computed here once, by name."""
    values: dict[str, float] = {}
    has_h, logp = _cheap_shared(mol, values)
    _ipc(mol, values)
    hba, alerts = _patterns(mol, values, with_qed_patterns=not has_h)
    if not has_h:
        _qed(mol, values, logp, hba, alerts)
        _bcut(mol, values)
    values["SPS"] = _sps(mol)
    return values


def _fill(mol: Chem.Mol, shared: dict[str, float], names: tuple[str, ...], functions: tuple) -> np.ndarray:
    out = np.empty(len(names), dtype=np.float64)
    for i, (name, fn) in enumerate(zip(names, functions)):
        value = shared.get(name)
        if value is None:
            try:
                value = fn(mol)
            except Exception:  # noqa: BLE001
                value = math.nan
        out[i] = value
    return out


def _forget_shared(mol: Chem.Mol) -> None:
    for attr in ("_eStateIndices", "_chargeDescriptors", "_adjMat", "_balabanMat"):
        if hasattr(mol, attr):
            delattr(mol, attr)


def descriptors_2d(mol: Chem.Mol) -> np.ndarray:
    """All ``descList`` descriptors of one molecule (float64, ``DESCRIPTOR_NAMES`` order).

    A descriptor whose computation fails is NaN, as in ``Descriptors.CalcMolDescriptors``.
    """
    try:
        shared = _shared_values(mol)
    except Exception:  # noqa: BLE001 - fall back to RDKit's functions one by one
        log.debug("shared descriptor intermediates failed; using RDKit's functions", exc_info=True)
        _forget_shared(mol)
        shared = {}
    return _fill(mol, shared, DESCRIPTOR_NAMES, _FUNCTIONS)


# --- the fast subset ------------------------------------------------------------------------

#: Descriptors left out of ``rdkit2d_fast``: the ones that cost most per molecule (measured on
#: MOSES molecules, one core): the 85 ``fr_*`` SMARTS counts and QED (its 116 alert patterns),
#: the eight BCUT2D Burden eigenvalues, Ipc/AvgIpc (characteristic polynomial), BertzCT, the
#: order-3/4 Chi path indices, the three Morgan fingerprint densities and SpacialScore.
FAST_EXCLUDED: frozenset[str] = frozenset(
    {name for name in DESCRIPTOR_NAMES if name.startswith("fr_")}
    | {"qed", "Ipc", "AvgIpc", "BertzCT", "SPS", "Chi3n", "Chi3v", "Chi4n", "Chi4v",
       "FpDensityMorgan1", "FpDensityMorgan2", "FpDensityMorgan3"}
    | set(_BCUT_NAMES)
)
#: Names in ``rdkit2d_fast``, in ``descList`` order.
FAST_DESCRIPTOR_NAMES: tuple[str, ...] = tuple(n for n in DESCRIPTOR_NAMES if n not in FAST_EXCLUDED)
_FAST_FUNCTIONS = tuple(fn for n, fn in zip(DESCRIPTOR_NAMES, _FUNCTIONS) if n not in FAST_EXCLUDED)


def naive_descriptors_2d_fast(mol: Chem.Mol) -> np.ndarray:
    """The reference for the fast subset: RDKit's own functions, one by one."""
    return _fill(mol, {}, FAST_DESCRIPTOR_NAMES, _FAST_FUNCTIONS)


def descriptors_2d_fast(mol: Chem.Mol) -> np.ndarray:
    """The ``FAST_DESCRIPTOR_NAMES`` descriptors (float64), equal to RDKit's functions."""
    try:
        shared: dict[str, float] = {}
        _cheap_shared(mol, shared)
    except Exception:  # noqa: BLE001
        log.debug("shared descriptor intermediates failed; using RDKit's functions", exc_info=True)
        _forget_shared(mol)
        shared = {}
    return _fill(mol, shared, FAST_DESCRIPTOR_NAMES, _FAST_FUNCTIONS)
