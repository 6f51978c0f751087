"""Virtual-trial design: validated once from TOML (``clinical_sim/default_design.toml`` ships)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clinical_sim.admet_link import PKTypical
from clinical_sim.pk import IIV
from clinical_sim.population import Eligibility, PopulationSpec
from pipelines.errors import InputError

DEFAULT_DESIGN = Path(__file__).with_name("default_design.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrialSection(_Section):
    n_per_arm: int = Field(150, ge=2, le=100_000)
    n_trials: int = Field(1000, ge=1, le=1_000_000)
    alpha: float = Field(0.025, gt=0, lt=0.5)
    test: Literal["one-sided", "two-sided"] = "one-sided"
    seed: int = 0
    cost_per_patient: float = Field(50_000.0, ge=0)


class DosingSection(_Section):
    dose_mg: float = Field(100.0, gt=0)
    interval_h: float = Field(24.0, gt=0)


class PKSection(_Section):
    """Between-patient variability, and optional explicit typical values that replace the ADMET-derived ones."""

    omega_cl: float = Field(0.3, ge=0)
    omega_v: float = Field(0.2, ge=0)
    omega_ka: float = Field(0.4, ge=0)
    cl_weight_exponent: float = 0.75
    v_weight_exponent: float = 1.0
    cl_l_h: float | None = Field(None, gt=0)
    v_l: float | None = Field(None, gt=0)
    ka_h: float | None = Field(None, gt=0)
    f: float | None = Field(None, gt=0, le=1)
    fraction_renal: float | None = Field(None, ge=0, le=1)
    tox_risk: float | None = Field(None, ge=0, le=1)

    def iiv(self) -> IIV:
        return IIV(self.omega_cl, self.omega_v, self.omega_ka, self.cl_weight_exponent, self.v_weight_exponent)

    def explicit(self) -> bool:
        return all(v is not None for v in (self.cl_l_h, self.v_l, self.ka_h, self.f))

    def typical(self, predicted: PKTypical | None = None) -> PKTypical:
        """Explicit values where given, else the predicted ones (error if neither)."""
        if predicted is None and not self.explicit():
            raise InputError("no PK typical values: give an ADMET model or set cl_l_h, v_l, ka_h and f in [pk]")
        base = predicted or PKTypical(cl_l_h=1.0, v_l=1.0, ka_h=1.0, f=1.0, fraction_renal=0.0)
        return PKTypical(
            cl_l_h=self.cl_l_h or base.cl_l_h, v_l=self.v_l or base.v_l, ka_h=self.ka_h or base.ka_h,
            f=self.f or base.f, fu=base.fu,
            fraction_renal=base.fraction_renal if self.fraction_renal is None else self.fraction_renal,
            tox_risk=base.tox_risk if self.tox_risk is None else self.tox_risk,
        )


class EfficacySection(_Section):
    """Emax model on steady-state average concentration; response = e0 + effect + N(0, sd)."""

    e0: float = 0.0
    emax: float = 8.0
    ec50_mg_l: float = Field(0.2, gt=0)
    hill: float = Field(1.0, gt=0)
    sd: float = Field(15.0, gt=0)


class SafetySection(_Section):
    """Logistic AE model (active arm): logit p = base + slope*(1 + tox_weight*tox_risk)*Cmax_ss/cmax_ref; placebo: base."""

    ae_base_logit: float = -2.5
    ae_slope: float = 1.0
    ae_cmax_ref_mg_l: float = Field(2.0, gt=0)
    ae_tox_weight: float = 2.0
    max_ae_rate: float = Field(0.3, gt=0, le=1)


class DropoutSection(_Section):
    rate: float = Field(0.1, ge=0, lt=1)
    after_ae: float = Field(0.3, ge=0, le=1)


class OptimizeSection(_Section):
    """Search space of ``trial optimize``."""

    dose_min_mg: float = Field(10.0, gt=0)
    dose_max_mg: float = Field(1000.0, gt=0)
    dose_grid_mg: list[float] = Field(default_factory=list)
    intervals_h: list[float] = Field(default_factory=lambda: [12.0, 24.0])
    n_min: int = Field(30, ge=2)
    n_max: int = Field(400, ge=2)
    crcl_min_range: tuple[float, float] = (15.0, 90.0)
    age_max_range: tuple[float, float] = (65.0, 90.0)
    max_ae_rate: float = Field(0.3, gt=0, le=1)
    trials_per_design: int = Field(300, ge=10)
    target_p_success: float = Field(0.8, gt=0, lt=1)

    @model_validator(mode="after")
    def _ranges(self) -> "OptimizeSection":
        if self.dose_min_mg > self.dose_max_mg or self.n_min > self.n_max:
            raise ValueError("optimize ranges: minimum above maximum")
        return self


class TrialDesign(_Section):
    """A two-arm (active vs placebo) parallel trial."""

    trial: TrialSection = Field(default_factory=TrialSection)
    dosing: DosingSection = Field(default_factory=DosingSection)
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    pk: PKSection = Field(default_factory=PKSection)
    efficacy: EfficacySection = Field(default_factory=EfficacySection)
    safety: SafetySection = Field(default_factory=SafetySection)
    dropout: DropoutSection = Field(default_factory=DropoutSection)
    optimize: OptimizeSection = Field(default_factory=OptimizeSection)

    def to_toml(self, path: str | Path) -> Path:
        path = Path(path)
        data = self.model_dump(mode="json", exclude_none=True)
        path.write_text(tomli_w.dumps(data))
        return path

    def updated(self, **sections: dict) -> "TrialDesign":
        """A copy with some fields of some sections replaced (validated)."""
        data = self.model_dump()
        for name, fields in sections.items():
            data[name].update(fields)
        return TrialDesign.model_validate(data)


def load_design(path: str | Path | None = None) -> TrialDesign:
    """Read and validate a design TOML (the shipped default when ``path`` is None)."""
    path = Path(path) if path else DEFAULT_DESIGN
    if not path.exists():
        raise InputError(f"design file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"design file {path} is not valid TOML: {exc}") from exc
    try:
        return TrialDesign.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"design file {path}: {problems}") from exc
