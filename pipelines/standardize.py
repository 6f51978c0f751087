"""Standardize one SMILES with RDKit: parse, sanitize, keep the parent fragment, neutralize, canonicalize.

The identity of a compound is the InChIKey of its standardized parent. Every input gives either a
``Standardized`` with a SMILES and an InChIKey, or one with a ``RejectReason`` (never an exception).

Steps, in order (each skipped when it cannot change anything, because this is on the screening
hot path):

1. type and emptiness checks; a raw-length guard so megabyte strings are not parsed at all;
2. RDKit's usual parse (sanitization, explicit-H removal, stereo perception); only when it fails,
   a second parse without sanitization finds out why (syntax -> ``unparsable``; valence ->
   ``valence_error``; aromaticity/kekulization -> ``unparsable``);
3. no carbon anywhere -> ``metal_only`` when every heavy atom is a metal, else ``no_carbon``;
4. several fragments -> known counter-ions and solvents are removed first (the salt/solvent list shipped
   with datamol: RDKit's ``Salts.txt`` + the ChEMBL structure pipeline's salts and solvents, applied
   with RDKit's ``SaltRemover``), then the largest *organic* fragment of what is left is the parent.
   When *every* fragment is on the list: a record with a metal ion other than sodium or potassium is
   rejected ``only_counterion`` (lithium citrate, zinc acetate, calcium lactate: given for the metal,
   the organic part is its counter-ion); otherwise the list order decides what stays, as
   ``SaltRemover(dontRemoveEverything=True)`` does (piperazine citrate -> piperazine, because citrate
   is stripped before piperazine would be; sodium benzoate -> benzoic acid: sodium and potassium are
   the usual counter-cations of acidic drugs, so the organic anion is kept). When what is left after
   stripping has no carbon, the usual ``metal_only`` / ``no_carbon`` reasons apply (thallium acetate);
5. too many heavy atoms in the parent -> ``too_many_heavy_atoms``;
6. charged atoms -> RDKit's ``Uncharger`` (neutralizes acids/bases, keeps zwitterions balanced);
7. optional canonical tautomer (slow: off by default);
8. canonical isomeric SMILES and InChIKey.
"""

from __future__ import annotations

import copy
import enum
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rdkit import Chem
from rdkit.Chem.MolStandardize import rdMolStandardize

from pipelines.procs import process_pool, resolve_n_jobs

log = logging.getLogger(__name__)

#: Default upper bound on heavy atoms of the parent fragment (drug-like, peptides and macrocycles fit).
DEFAULT_MAX_HEAVY_ATOMS = 150
#: Strings longer than this are rejected before parsing (about 4 characters per heavy atom is generous).
_MAX_CHARS_PER_HEAVY_ATOM = 8

# Metals (alkali, alkaline earth, transition, post-transition, lanthanides, actinides).
_METALS = frozenset(
    [3, 4, 11, 12, 13, 19, 20, *range(21, 32), 37, 38, *range(39, 51), 55, 56, *range(57, 85),
     87, 88, *range(89, 119)]
)


_CARBON = Chem.MolFromSmarts("[#6]")
_CHARGED = Chem.MolFromSmarts("[+,-]")


class RejectReason(str, enum.Enum):
    """Why a row was rejected. The values are the strings written to ``rejected.csv``."""

    EMPTY = "empty"                                  #: empty or whitespace-only SMILES
    NOT_A_STRING = "not_a_string"                    #: missing (NaN/None) or a non-text value
    UNPARSABLE = "unparsable"                        #: SMILES syntax error, bad aromaticity, unreadable record
    VALENCE_ERROR = "valence_error"                  #: an atom with an impossible valence
    NO_CARBON = "no_carbon"                          #: inorganic: no carbon atom at all
    METAL_ONLY = "metal_only"                        #: only metal atoms (e.g. ``[Na+]``, ``[Pt]``)
    TOO_MANY_HEAVY_ATOMS = "too_many_heavy_atoms"    #: parent fragment above ``max_heavy_atoms``
    ONLY_COUNTERION = "only_counterion"              #: a metal salt whose organic part is a known counter-ion
    STANDARDIZATION_FAILED = "standardization_failed"  #: RDKit failed in a later step (e.g. no InChI)
    # Row-level reasons for measurement tables (``validate_long_table``).
    BAD_VALUE = "bad_value"                          #: value missing, text, or not finite
    BAD_RELATION = "bad_relation"                    #: relation not one of = < > <= >= (or a known word)
    MISSING_ENDPOINT = "missing_endpoint"            #: no endpoint name
    UNKNOWN_UNIT = "unknown_unit"                    #: a unit that is not the endpoint's catalog unit
    UNIT_MISMATCH = "unit_mismatch"                  #: a unit other than the endpoint's majority unit

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


@dataclass(frozen=True, slots=True)
class Standardized:
    """The outcome of standardizing one SMILES."""

    smiles: str | None
    """Canonical isomeric SMILES of the standardized parent, or None when rejected."""
    inchikey: str | None
    """Standard InChIKey of the parent (the compound identity), or None when rejected."""
    reason: RejectReason | None
    """None when accepted, else why the input was rejected."""

    @property
    def ok(self) -> bool:
        """True when the input was accepted."""
        return self.reason is None


@functools.lru_cache(maxsize=1)
def _fragment_chooser() -> rdMolStandardize.LargestFragmentChooser:
    return rdMolStandardize.LargestFragmentChooser(preferOrganic=True)


@functools.lru_cache(maxsize=1)
def _salt_remover():
    """RDKit's SaltRemover over datamol's salts/solvents list (found without importing datamol, which
    takes seconds; the list is the same file ``datamol.remove_salts_solvents`` uses)."""
    import importlib.util
    import os

    from rdkit.Chem.SaltRemover import SaltRemover

    spec = importlib.util.find_spec("datamol")
    path = os.path.join(spec.submodule_search_locations[0], "data", "salts_solvents.smi")
    return SaltRemover(defnFilename=path)


@functools.lru_cache(maxsize=1)
def _salt_sizes() -> tuple[tuple[Chem.Mol, int | None], ...]:
    """Each pattern of the salt list, in its order, with its atom count (None for a pattern of several
    fragments, which is never skipped by size)."""
    return tuple((salt, salt.GetNumAtoms() if len(Chem.GetMolFrags(salt)) == 1 else None)
                 for salt in _salt_remover().salts)


def _remover_for(mol: Chem.Mol):
    """The salt remover narrowed to the patterns that can delete a fragment of ``mol``; ``StripMol`` gives
    exactly what the full list gives. ``SaltRemover.StripMol`` copies the molecule once per pattern
    (``DeleteSubstructs``) even where the pattern matches nothing; narrowed, a multi-fragment catalog
    molecule costs 0.95 instead of 3.1 ms CPU to standardize (single-fragment: 0.5 ms; 3,907 molecules,
    ``bench/standardize.py --fragments``). A pattern deletes only a whole fragment, so a connected pattern
    needs a fragment with exactly its atom count, and any pattern needs a match; a pattern that matches
    nothing in ``mol`` matches nothing in what is left of it after other fragments are deleted, so
    skipping it changes nothing (same patterns applied, in the same order)."""
    remover = _salt_remover()
    sizes = {len(frag) for frag in Chem.GetMolFrags(mol)}
    salts = [salt for salt, n in _salt_sizes() if (n is None or n in sizes)
             and mol.HasSubstructMatch(salt, useChirality=remover.useChirality)]
    narrowed = copy.copy(remover)  # shallow: the shared remover is never changed
    narrowed.salts = salts
    return narrowed


#: Sodium and potassium: the counter-cations of acidic drugs, never the reason a salt is given.
_ALKALI_COUNTER_CATIONS = frozenset((11, 19))


def _metal_ion_given_for_itself(mol: Chem.Mol) -> bool:
    """True when a fragment is a lone metal atom other than Na / K (Li, Mg, Ca, Zn, ...)."""
    for frag in Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False):
        heavy = [a.GetAtomicNum() for a in frag.GetAtoms() if a.GetAtomicNum() > 1]
        if heavy and all(z in _METALS and z not in _ALKALI_COUNTER_CATIONS for z in heavy):
            return True
    return False


def strip_counterions(mol: Chem.Mol) -> tuple[Chem.Mol | None, RejectReason | None]:
    """Remove known counter-ions and solvents from a multi-fragment molecule (module docstring, step 4).

    ``(mol, None)`` with the listed fragments gone (still possibly several fragments), or
    ``(None, ONLY_COUNTERION)`` for a salt of a listed counter-ion with a metal other than Na / K. Call only with more than
    one fragment: the list would strip a lone acetic acid or piperazine too.
    """
    remover = _remover_for(mol)
    stripped = remover.StripMol(mol, dontRemoveEverything=False)
    if stripped.GetNumAtoms():
        return stripped, None
    if _metal_ion_given_for_itself(mol):
        return None, RejectReason.ONLY_COUNTERION
    return remover.StripMol(mol, dontRemoveEverything=True), None


@functools.lru_cache(maxsize=1)
def _uncharger() -> rdMolStandardize.Uncharger:
    return rdMolStandardize.Uncharger(canonicalOrder=True)


@functools.lru_cache(maxsize=1)
def _tautomer_enumerator() -> rdMolStandardize.TautomerEnumerator:
    enumerator = rdMolStandardize.TautomerEnumerator()
    enumerator.SetMaxTautomers(200)
    enumerator.SetRemoveSp3Stereo(False)
    enumerator.SetRemoveBondStereo(False)
    return enumerator


def _reject(reason: RejectReason) -> Standardized:
    return Standardized(None, None, reason)


def _has_internal_whitespace(text: str) -> bool:
    # "CCO ethanol" would parse as CCO with a name: a cell with a second token is not a SMILES.
    # CXSMILES extensions (" |...|") are allowed.
    head, sep, tail = text.partition(" ")
    if "\t" in text or "\n" in text or "\r" in text:
        return True
    return bool(sep) and not tail.lstrip().startswith("|")


def parse_smiles(smiles: object, max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS,
                 allow_valence_errors: bool = False) -> tuple[Chem.Mol | None, RejectReason | None]:
    """Parse and sanitize one SMILES: ``(mol, None)`` or ``(None, reason)``. Never raises.

    The project's one SMILES parser (featurizers and the clinical module call it too).
    ``allow_valence_errors=True`` keeps a molecule whose only problem is an atom's valence
    (organometallics in trial tables), sanitized in every other respect, instead of rejecting it.
    """
    if not isinstance(smiles, str):
        return None, RejectReason.NOT_A_STRING
    text = smiles.strip()
    if not text:
        return None, RejectReason.EMPTY
    if len(text) > _MAX_CHARS_PER_HEAVY_ATOM * max_heavy_atoms:
        return None, RejectReason.TOO_MANY_HEAVY_ATOMS
    if _has_internal_whitespace(text):
        return None, RejectReason.UNPARSABLE
    try:
        # The usual parse (sanitization, explicit-H removal and stereo perception, exactly as RDKit
        # does it everywhere else); only a failure is parsed again to find out why.
        mol = Chem.MolFromSmiles(text)
    except Exception:  # noqa: BLE001 - RDKit may raise on pathological input
        mol = None
    if mol is not None:
        return (mol, None) if mol.GetNumAtoms() else (None, RejectReason.UNPARSABLE)
    try:
        raw = Chem.MolFromSmiles(text, sanitize=False)
    except Exception:  # noqa: BLE001
        raw = None
    if raw is None or raw.GetNumAtoms() == 0:
        return None, RejectReason.UNPARSABLE
    mol, reason = sanitize_mol(raw)
    if reason is RejectReason.VALENCE_ERROR and allow_valence_errors:
        return _sanitize_except_valence(Chem.MolFromSmiles(text, sanitize=False))
    # sanitize_mol succeeding here means MolFromSmiles failed in a later step
    return (None, reason) if reason is not None else (None, RejectReason.UNPARSABLE)


def _sanitize_except_valence(mol: Chem.Mol) -> tuple[Chem.Mol | None, RejectReason | None]:
    try:
        mol.UpdatePropertyCache(strict=False)
        Chem.SanitizeMol(mol, Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES,
                         catchErrors=True)
        Chem.GetSymmSSSR(mol)
    except Exception:  # noqa: BLE001 - RDKit raises many kinds; a bad molecule is a reject, not a crash
        return None, RejectReason.VALENCE_ERROR
    return mol, None


def sanitize_mol(mol: Chem.Mol) -> tuple[Chem.Mol | None, RejectReason | None]:
    """Sanitize an unsanitized molecule (e.g. from an SDF record) in place, mapping RDKit's failure to a
    reason, then remove explicit hydrogens and perceive stereochemistry. Never raises."""
    try:
        failed = Chem.SanitizeMol(mol, catchErrors=True)
    except Exception:  # noqa: BLE001
        return None, RejectReason.UNPARSABLE
    if failed != Chem.SanitizeFlags.SANITIZE_NONE:
        if failed == Chem.SanitizeFlags.SANITIZE_PROPERTIES:
            return None, RejectReason.VALENCE_ERROR
        return None, RejectReason.UNPARSABLE
    try:
        mol = Chem.RemoveHs(mol)
        Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    except Exception:  # noqa: BLE001
        return None, RejectReason.STANDARDIZATION_FAILED
    return mol, None


def _carbon_check(mol: Chem.Mol) -> RejectReason | None:
    if mol.HasSubstructMatch(_CARBON):
        return None
    heavy = [atom.GetAtomicNum() for atom in mol.GetAtoms() if atom.GetAtomicNum() > 1]
    if 6 in heavy:
        return None
    if heavy and all(z in _METALS for z in heavy):
        return RejectReason.METAL_ONLY
    return RejectReason.NO_CARBON


def standardize_mol(mol: Chem.Mol, tautomer: bool = False,
                    max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS
                    ) -> tuple[Chem.Mol | None, RejectReason | None]:
    """Standardize a sanitized molecule to its neutral parent: ``(parent, None)`` or ``(None, reason)``."""
    reason = _carbon_check(mol)
    if reason is not None:
        return None, reason
    try:
        if mol.GetNumAtoms() > 1 and len(Chem.GetMolFrags(mol)) > 1:
            mol, reason = strip_counterions(mol)
            if reason is not None:
                return None, reason
            if len(Chem.GetMolFrags(mol)) > 1:
                mol = _fragment_chooser().choose(mol)
            reason = _carbon_check(mol)  # e.g. carbonate stripped from a platinum salt leaves [Pt]
            if reason is not None:
                return None, reason
        if mol.GetNumHeavyAtoms() > max_heavy_atoms:
            return None, RejectReason.TOO_MANY_HEAVY_ATOMS
        if mol.HasSubstructMatch(_CHARGED):
            mol = _uncharger().uncharge(mol)
        if tautomer:
            mol = _tautomer_enumerator().Canonicalize(mol)
    except Exception:  # noqa: BLE001 - any RDKit failure in these steps is a reject, not a crash
        log.debug("standardization failed for %s", Chem.MolToSmiles(mol), exc_info=True)
        return None, RejectReason.STANDARDIZATION_FAILED
    return mol, None


def standardize_smiles(smiles: object, tautomer: bool = False,
                       max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS,
                       with_inchikey: bool = True) -> Standardized:
    """Standardize one SMILES (see the module docstring for the steps). Never raises.

    ``with_inchikey=False`` skips the InChIKey (about half the cost) for callers that only need the
    canonical SMILES, e.g. screening a library; ``inchikey`` is then None.
    """
    mol, reason = parse_smiles(smiles, max_heavy_atoms)
    if reason is not None:
        return _reject(reason)
    parent, reason = standardize_mol(mol, tautomer=tautomer, max_heavy_atoms=max_heavy_atoms)
    if reason is not None:
        return _reject(reason)
    try:
        canonical = Chem.MolToSmiles(parent)
        inchikey = Chem.MolToInchiKey(parent) if with_inchikey else None
    except Exception:  # noqa: BLE001
        return _reject(RejectReason.STANDARDIZATION_FAILED)
    if not canonical or (with_inchikey and not inchikey):
        return _reject(RejectReason.STANDARDIZATION_FAILED)
    return Standardized(canonical, inchikey, None)


def standardize_many(smiles: list[object] | tuple[object, ...], tautomer: bool = False,
                     max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS,
                     with_inchikey: bool = True) -> list[Standardized]:
    """Standardize a sequence, computing each distinct input string once. Output aligns with input."""
    done: dict[object, Standardized] = {}
    out: list[Standardized] = []
    for item in smiles:
        key = item.strip() if isinstance(item, str) else None
        if key is None:
            out.append(standardize_smiles(item, tautomer, max_heavy_atoms, with_inchikey))
            continue
        result = done.get(key)
        if result is None:
            result = standardize_smiles(key, tautomer, max_heavy_atoms, with_inchikey)
            done[key] = result
        out.append(result)
    return out


#: Below this many distinct inputs, worker processes cost more than they save.
PARALLEL_MIN_UNIQUE = 4000
_CHUNK = 1000


def _standardize_chunk(args: tuple[list[str], bool, int, bool]) -> list[tuple[str | None, str | None, str | None]]:
    chunk, tautomer, max_heavy_atoms, with_inchikey = args
    out = []
    for text in chunk:
        r = standardize_smiles(text, tautomer, max_heavy_atoms, with_inchikey)
        out.append((r.smiles, r.inchikey, r.reason.value if r.reason is not None else None))
    return out


def standardize_unique(values: Sequence[object], tautomer: bool = False,
                       max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS, with_inchikey: bool = True,
                       n_jobs: int | None = 1, progress: Callable[[int], None] | None = None
                       ) -> list[Standardized]:
    """Standardize a column: each distinct string once, on ``n_jobs`` processes for large inputs.

    The output aligns with ``values``. ``progress(n)`` is told how many of ``values`` are done.
    Worker processes are used only from ``PARALLEL_MIN_UNIQUE`` distinct strings up.
    """
    values = list(values)
    keys = [v.strip() if isinstance(v, str) else None for v in values]
    unique = list(dict.fromkeys(k for k in keys if k is not None))
    jobs = resolve_n_jobs(n_jobs)
    done: dict[str, Standardized] = {}
    total = len(values)

    def report(n_unique_done: int) -> None:
        if progress is not None and unique:
            progress(int(total * n_unique_done / len(unique)))

    if jobs > 1 and len(unique) >= PARALLEL_MIN_UNIQUE:
        chunks = [unique[i:i + _CHUNK] for i in range(0, len(unique), _CHUNK)]
        n_done = 0
        with process_pool(jobs, preload="pipelines.standardize") as pool:
            args = ((c, tautomer, max_heavy_atoms, with_inchikey) for c in chunks)
            for chunk, results in zip(chunks, pool.map(_standardize_chunk, args), strict=True):
                for text, (smi, key, reason) in zip(chunk, results, strict=True):
                    done[text] = Standardized(smi, key, RejectReason(reason) if reason else None)
                n_done += len(chunk)
                report(n_done)
    else:
        for i, text in enumerate(unique):
            done[text] = standardize_smiles(text, tautomer, max_heavy_atoms, with_inchikey)
            if (i + 1) % 500 == 0:
                report(i + 1)
    out = [done[k] if k is not None else standardize_smiles(v, tautomer, max_heavy_atoms, with_inchikey)
           for k, v in zip(keys, values, strict=True)]
    if progress is not None:
        progress(total)
    return out
