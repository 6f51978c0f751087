"""Bad input fails before any orchestration starts: one ``error:`` line naming the option, exit 2,
no traceback, no retries (issue 13 §2).

"Before Prefect, Ray or Flower" is checked as an import marker: the commands import those
lazily, after their input checks, so a check that ran too late leaves ``prefect`` (or ``flwr``,
``ray``) in ``sys.modules`` of the process that ran the command.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

_RUN_IN_FRESH_PROCESS = r"""
import json, sys
from typer.testing import CliRunner
from flows.cli import app
r = CliRunner().invoke(app, json.loads(sys.argv[1]))
print(json.dumps({"code": r.exit_code, "stderr": r.stderr, "stdout": r.stdout,
                  "exception": None if r.exception is None or isinstance(r.exception, SystemExit)
                  else repr(r.exception),
                  "loaded": sorted(m for m in ("prefect", "flwr", "ray", "torch", "distributed")
                                   if m in sys.modules)}))
"""


def _run(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", _RUN_IN_FRESH_PROCESS, json.dumps(args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_inputs")
    files = {"empty": d / "empty.csv", "header_only": d / "header.csv", "no_smiles": d / "cols.csv",
             "not_a_bundle": d / "bundle_without_json"}
    files["empty"].write_text("")
    files["header_only"].write_text("smiles\n")
    files["no_smiles"].write_text("name,value\naspirin,1.0\ncaffeine,2.0\n")
    files["not_a_bundle"].mkdir()
    (d / "partners").mkdir()
    files["partners"] = d / "partners"
    files["missing"] = d / "missing.csv"
    return files


def _cases(f: dict[str, Path], library: Path, bundle: Path) -> list[tuple[list[str], str]]:
    out = ["--out", str(f["missing"].parent / "out")]
    return [
        (["screen", str(f["missing"]), "--model", str(bundle), *out], "LIBRARY"),
        (["screen", str(f["empty"]), "--model", str(bundle), *out], "LIBRARY"),
        (["screen", str(f["header_only"]), "--model", str(bundle), *out], "LIBRARY"),
        (["screen", str(f["no_smiles"]), "--model", str(bundle), *out], "--smiles-col"),
        (["screen", str(library), "--model", str(bundle), "--smiles-col", "SMILES_X", *out], "--smiles-col"),
        (["screen", str(library), "--model", str(f["not_a_bundle"]), *out], "--model"),
        (["screen", str(library), "--model", str(bundle), "--runner", "default",
          "--dask-address", "tcp://127.0.0.1:9", *out], "--dask-address"),
        (["screen", str(library), "--model", str(bundle), "--workers", "3", *out], "--workers"),
        (["admet", "predict", str(f["no_smiles"]), "--model", str(bundle), "--out", str(f["missing"])],
         "--smiles-col"),
        (["admet", "train", "--data", str(f["empty"]), *out], "--data"),
        (["federate", "--partners-dir", str(f["partners"]), *out], "--partners-dir"),
        (["federate", "--data", str(f["missing"]), *out], "--data"),
    ]


@pytest.mark.parametrize("case", range(12))
def test_bad_input_is_one_error_line_naming_the_option_before_any_orchestration(case, bad_files, tiny_library,
                                                                                  tiny_bundle):
    args, option = _cases(bad_files, tiny_library, tiny_bundle)[case]
    result = _run(args)
    assert result["exception"] is None, result
    assert result["code"] == 2, result
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result["stderr"]
    assert option in lines[0], lines[0]
    assert "Traceback" not in result["stderr"] + result["stdout"]
    assert result["loaded"] == [], f"{args[0]} loaded {result['loaded']} before rejecting its input"


def test_the_console_script_prints_the_same_single_line(bad_files, tiny_bundle):
    proc = subprocess.run([str(Path(sys.executable).with_name("fedadmet")), "screen", str(bad_files["no_smiles"]),
                           "--model", str(tiny_bundle)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: LIBRARY {bad_files['no_smiles']}: no SMILES column found among ['name', 'value']; "
        "name it 'smiles' or pass --smiles-col"]
    assert "Starting temporary server" not in proc.stdout + proc.stderr


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_input_error_inside_a_flow_is_not_retried_and_logged_without_traceback(prefect_harness):
    from prefect import flow, task

    from flows.cli.errors import quiet_input_error_tracebacks
    from flows.runners import retry_unless_input_error
    from pipelines.errors import InputError

    quiet_input_error_tracebacks()
    calls = {"input": 0, "other": 0}

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_input_error)
    def read(kind: str) -> None:
        calls[kind] += 1
        raise InputError("no SMILES column") if kind == "input" else OSError("disk hiccup")

    @flow
    def screening_like(kind: str) -> None:
        read(kind)

    seen = _Records()
    run_loggers = [logging.getLogger(name) for name in ("prefect.task_runs", "prefect.flow_runs")]
    for logger in run_loggers:
        logger.addHandler(seen)
    try:
        for kind in ("input", "other"):
            state = screening_like(kind, return_state=True)
            assert state.is_failed()
    finally:
        for logger in run_loggers:
            logger.removeHandler(seen)
    assert calls == {"input": 1, "other": 3}  # an unusable input fails at once; a hiccup is retried
    input_records = [r for r in seen.records if "no SMILES column" in r.getMessage()]
    assert input_records and all(r.exc_info is None for r in input_records)
    other = [r for r in seen.records if r.exc_info and isinstance(r.exc_info[1], OSError)]
    assert other, "a real failure keeps its traceback"
