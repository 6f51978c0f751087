"""What the maintainer build knows about each vendored TDC ADMET / Tox set (read by ``build_datasets.py``).

Not used at run time: the product reads ``datasets/catalog.csv``, which the build writes from these specs.
One :class:`TdcSet` per endpoint; its fields become catalog columns, data-card rows and NOTICE lines.
"""

from __future__ import annotations

from dataclasses import dataclass

TDC_CITATION = ("Huang K., Fu T., Gao W., Zhao Y., Roohani Y., Leskovec J., Coley C. W., Xiao C., Sun J., Zitnik M. "
                "\"Therapeutics Data Commons: Machine Learning Datasets and Tasks for Drug Discovery and "
                "Development.\" NeurIPS Datasets and Benchmarks (2021)")
TDC_LICENCE = "CC BY 4.0 (TDC)"
AZ_LICENCE = "CC BY-SA 3.0 (AstraZeneca deposition in ChEMBL); CC BY 4.0 (TDC)"
TOX21_LICENCE = "public domain (Tox21, US government work)"
AZ_PAPER = ("AstraZeneca, \"Experimental in vitro DMPK and physicochemical data on a set of publicly disclosed "
            "compounds\" (2016), ChEMBL deposition, doi:10.6019/CHEMBL3301361")
VEITH = "Veith H. et al., Nat. Biotechnol. 27, 1050-1055 (2009)"
CARBON_MANGELS = "Carbon-Mangels M., Hutter M. C., Mol. Inform. 30, 885-895 (2011)"
TOX21_PAPER = ("Tox21 Data Challenge 2014 (NIH NCATS, US EPA, NTP); Huang R. et al., Front. Environ. Sci. 3, 85 "
               "(2016)")


@dataclass(frozen=True)
class TdcSet:
    """One endpoint built from a folder of ``../shared/data/tdc_admet``."""

    endpoint: str
    """Endpoint id (the TDC / ADMET-AI name)."""
    folder: str
    """Folder under ``tdc_admet/``."""
    task_type: str
    """``regression`` or ``classification``."""
    unit: str
    """Unit of the stored value (``binary`` for classification)."""
    description: str
    """What the value means (for classification: what 1 means)."""
    better: str
    """``higher`` / ``lower`` / ``context``."""
    source: str
    """The original paper (or deposition) of the measurements."""
    licence: str = TDC_LICENCE
    transform: str = "none"
    """Applied to the value before training and undone at prediction (``none`` / ``log10``)."""
    metric: str = ""
    """The TDC ADMET Benchmark Group leaderboard metric, empty where the set is not in the group."""
    split_kind: str = "official"
    """``official`` (TDC's train_val/test kept verbatim) or ``none``."""
    column: str = "label"
    """Label column in the folder's ``data.csv`` (the wide MoleculeNet files name one per assay)."""
    aliases: tuple[str, ...] = ()
    """Older endpoint names (the HINT copies) that resolve to this endpoint."""


def _reg(endpoint, folder, unit, description, better, source, metric, transform="none", licence=TDC_LICENCE):
    return TdcSet(endpoint, folder, "regression", unit, description, better, source, licence, transform, metric)


def _cls(endpoint, folder, description, better, source, metric="", split_kind="official", column="label",
         aliases=(), licence=TDC_LICENCE):
    return TdcSet(endpoint, folder, "classification", "binary", description, better, source, licence, "none",
                  metric, split_kind, column, aliases)


TOX21_ASSAYS = {
    "NR-AR": "androgen receptor (full length) agonist",
    "NR-AR-LBD": "androgen receptor ligand-binding domain agonist",
    "NR-AhR": "aryl hydrocarbon receptor agonist",
    "NR-Aromatase": "aromatase inhibitor",
    "NR-ER": "oestrogen receptor alpha (full length) agonist",
    "NR-ER-LBD": "oestrogen receptor ligand-binding domain agonist",
    "NR-PPAR-gamma": "PPAR-gamma agonist",
    "SR-ARE": "antioxidant response element (oxidative stress) active",
    "SR-ATAD5": "ATAD5 (genotoxic stress) active",
    "SR-HSE": "heat-shock response element active",
    "SR-MMP": "mitochondrial membrane potential disrupted",
    "SR-p53": "p53 (DNA damage) pathway active",
}

TDC_SETS: tuple[TdcSet, ...] = (
    # --- the 22 sets of the TDC ADMET Benchmark Group (official train_val / test split)
    _reg("Caco2_Wang", "caco2_wang", "log10(cm/s)", "Caco-2 cell permeability (apparent, log10 cm/s)", "higher",
         "Wang N.-N. et al., J. Chem. Inf. Model. 56, 763-773 (2016)", "MAE"),
    _cls("HIA_Hou", "hia_hou", "absorbed from the human intestine (HIA >= 30%)", "higher",
         "Hou T. et al., J. Chem. Inf. Model. 47, 208-218 (2007)", "AUROC"),
    _cls("Pgp_Broccatelli", "pgp_broccatelli", "inhibits P-glycoprotein", "lower",
         "Broccatelli F. et al., J. Med. Chem. 54, 1740-1751 (2011)", "AUROC"),
    _cls("Bioavailability_Ma", "bioavailability_ma", "orally bioavailable (F >= 20%)", "higher",
         "Ma C.-Y. et al., J. Pharm. Biomed. Anal. 47, 677-682 (2008)", "AUROC", aliases=("bioavailability",)),
    _reg("Lipophilicity_AstraZeneca", "lipophilicity_astrazeneca", "logD7.4",
         "octanol/water distribution coefficient at pH 7.4", "context", AZ_PAPER, "MAE", licence=AZ_LICENCE),
    _reg("Solubility_AqSolDB", "solubility_aqsoldb", "log10(mol/L)", "aqueous solubility (AqSolDB curation)",
         "higher", "Sorkun M. C. et al., Sci. Data 6, 143 (2019)", "MAE"),
    _cls("BBB_Martins", "bbb_martins", "penetrates the blood-brain barrier", "context",
         "Martins I. F. et al., J. Chem. Inf. Model. 52, 1686-1697 (2012)", "AUROC", aliases=("bbb",)),
    _reg("PPBR_AZ", "ppbr_az", "% bound", "plasma protein binding rate (several species, no species column)",
         "lower", AZ_PAPER, "MAE", licence=AZ_LICENCE),
    _reg("VDss_Lombardo", "vdss_lombardo", "L/kg", "volume of distribution at steady state (human)", "context",
         "Lombardo F., Jing Y., J. Chem. Inf. Model. 56, 2042-2052 (2016)", "Spearman", transform="log10"),
    _cls("CYP2C9_Veith", "cyp2c9_veith", "inhibits CYP2C9", "lower", VEITH, "AUPRC"),
    _cls("CYP2D6_Veith", "cyp2d6_veith", "inhibits CYP2D6", "lower", VEITH, "AUPRC"),
    _cls("CYP3A4_Veith", "cyp3a4_veith", "inhibits CYP3A4", "lower", VEITH, "AUPRC"),
    _cls("CYP2C9_Substrate_CarbonMangels", "cyp2c9_substrate_carbonmangels", "CYP2C9 substrate", "context",
         CARBON_MANGELS, "AUPRC"),
    _cls("CYP2D6_Substrate_CarbonMangels", "cyp2d6_substrate_carbonmangels", "CYP2D6 substrate", "context",
         CARBON_MANGELS, "AUPRC"),
    _cls("CYP3A4_Substrate_CarbonMangels", "cyp3a4_substrate_carbonmangels", "CYP3A4 substrate", "context",
         CARBON_MANGELS, "AUROC"),
    _reg("Half_Life_Obach", "half_life_obach", "h", "human terminal half-life", "higher",
         "Obach R. S. et al., Drug Metab. Dispos. 36, 1385-1405 (2008)", "Spearman", transform="log10"),
    _reg("Clearance_Hepatocyte_AZ", "clearance_hepatocyte_az", "uL/min/10^6 cells",
         "intrinsic clearance in human hepatocytes", "lower",
         AZ_PAPER + "; Di L. et al., Eur. J. Med. Chem. 57, 441-448 (2012)", "Spearman", transform="log10",
         licence=AZ_LICENCE),
    _reg("Clearance_Microsome_AZ", "clearance_microsome_az", "uL/min/mg",
         "intrinsic clearance in human liver microsomes", "lower",
         AZ_PAPER + "; Di L. et al., Eur. J. Med. Chem. 57, 441-448 (2012)", "Spearman", transform="log10",
         licence=AZ_LICENCE),
    _reg("LD50_Zhu", "ld50_zhu", "log10(1/(mol/kg))", "acute oral toxicity in rat, LD50 (higher = more toxic)",
         "lower", "Zhu H. et al., Chem. Res. Toxicol. 22, 1913-1921 (2009)", "MAE"),
    _cls("hERG", "herg", "blocks the hERG channel", "lower",
         "Wang S. et al., Mol. Pharm. 13, 2855-2866 (2016)", "AUROC"),
    _cls("AMES", "ames", "mutagenic in the Ames test", "lower",
         "Xu C. et al., J. Chem. Inf. Model. 52, 2840-2847 (2012)", "AUROC"),
    _cls("DILI", "dili", "causes drug-induced liver injury", "lower",
         "Xu Y. et al., J. Chem. Inf. Model. 55, 2085-2093 (2015)", "AUROC"),
    # --- more TDC sets, no official split
    _cls("CYP1A2_Veith", "cyp1a2_veith", "inhibits CYP1A2", "lower", VEITH, split_kind="none"),
    _cls("CYP2C19_Veith", "cyp2c19_veith", "inhibits CYP2C19", "lower", VEITH, split_kind="none",
         aliases=("cyp2c19_inhib",)),
    _cls("Skin_Reaction", "skin_reaction", "skin sensitiser", "lower",
         "Alves V. M. et al., Toxicol. Appl. Pharmacol. 284, 262-272 (2015)", split_kind="none"),
    _cls("Carcinogens_Lagunin", "carcinogens_lagunin", "carcinogenic", "lower",
         "Lagunin A. et al., QSAR Comb. Sci. 28, 806-810 (2009)", split_kind="none"),
    _cls("ClinTox", "clintox_moleculenet", "failed clinical trials for toxicity (MoleculeNet CT_TOX)", "lower",
         "Gayvert K. M. et al., Cell Chem. Biol. 23, 1294-1301 (2016); Wu Z. et al. (MoleculeNet), Chem. Sci. 9, "
         "513-530 (2018)", split_kind="none", column="CT_TOX"),
    *(_cls(assay, "tox21", f"Tox21 {meaning}", "lower", TOX21_PAPER, split_kind="none", column=assay,
           licence=TOX21_LICENCE)
      for assay, meaning in TOX21_ASSAYS.items()),
)
