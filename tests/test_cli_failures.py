"""Every sub-command, every user mistake (issue 11): exit 2, one line on stderr, nothing before it,
no traceback, no partial file, no input value in what is printed (issue 11).

Each case builds its arguments from a shared folder of good inputs (an agency CSV, a key,
an encoded file, a linkage database) plus whatever bad thing the case makes.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import AGENCY_ROWS, HEADER, write_csv
from simlink.agency.keys import generate_key_file
from simlink.cli import main

# Identifier values of the good input: none may ever be printed.
SECRET_VALUES = sorted({v for row in AGENCY_ROWS for v in (row[1], row[2], row[3], row[5], row[7]) if len(v) >= 5})


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """Valid inputs, made once: CSV, key, encoded file, linkage database, a plain file."""
    folder = tmp_path_factory.mktemp("good")
    csv = write_csv(folder / "police.csv", AGENCY_ROWS)
    key = generate_key_file(folder / "secret.key")
    encoded = folder / "police.parquet"
    linkage = folder / "linkage.duckdb"
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(csv), "--key", str(key), "--agency", "police", "-o", str(encoded)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["link", str(encoded), "-o", str(linkage), "--no-charts"])
    assert result.exit_code == 0, result.output
    truth = folder / "truth.csv"
    truth.write_text("agency,record_id,person_id\n" + "".join(f"police,{r[0]},{i}\n" for i, r in enumerate(AGENCY_ROWS)))
    plain = folder / "plain.txt"
    plain.write_text("not a folder\n")
    return {"csv": csv, "key": key, "encoded": encoded, "linkage": linkage, "truth": truth, "plain": plain}


def _bad_files(tmp: Path) -> dict[str, Path]:
    files = {
        "empty": tmp / "empty.csv",
        "binary": tmp / "garbage.bin",
        "ragged": tmp / "ragged.csv",
        "no_columns": tmp / "nocols.csv",
        "toml": tmp / "bad.toml",
        "json": tmp / "bad.json",
        "open_key": tmp / "open.key",
        "nested_parquet": tmp / "nested.parquet",
        "future_dob": tmp / "future.csv",
    }
    files["empty"].write_bytes(b"")
    files["binary"].write_bytes(bytes(range(256)) * 64)
    files["ragged"].write_text(",".join(HEADER) + "\n" + ",".join(AGENCY_ROWS[0]) + ",extra,fields\n")
    files["no_columns"].write_text("a,b\n1,2\n")
    files["toml"].write_text("version = [[[\n")
    files["json"].write_text("{not json")
    files["open_key"].write_text("ab" * 32 + "\n")
    files["open_key"].chmod(0o644)
    columns = {h: pa.array([v]) for h, v in zip(HEADER, AGENCY_ROWS[0])}
    columns["given_name"] = pa.array([{"x": 1}])  # a column of records, not text
    pq.write_table(pa.table(columns), files["nested_parquet"])
    future = [list(AGENCY_ROWS[0])]
    future[0][3] = "01/01/2199"
    write_csv(files["future_dob"], future)
    return files


def _unclosed_quote_csv(tmp: Path) -> Path:
    """An opening quote never closed: the rest of the file (1 MB) reads as one huge value."""
    path = tmp / "quote.csv"
    body = "".join(",".join(r) + "\n" for r in AGENCY_ROWS) * 2000
    path.write_text(",".join(HEADER) + "\n" + 'P000,"Unclosed,x,01/01/1990,M,B1 1AA,2025-01-01,\n' + body)
    return path


Case = Callable[[dict, dict, Path], list[str]]


def _enc(csv: Path, key: Path, out: Path, *extra: str) -> list[str]:
    return ["encode", str(csv), "--key", str(key), "--agency", "police", "-o", str(out), *extra]


CASES: dict[str, Case] = {
    # encode: bad paths
    "encode-missing-input": lambda g, b, t: _enc(t / "nope.csv", g["key"], t / "o.parquet"),
    "encode-input-is-folder": lambda g, b, t: _enc(t, g["key"], t / "o.parquet"),
    "encode-out-parent-missing": lambda g, b, t: _enc(g["csv"], g["key"], t / "no" / "o.parquet"),
    "encode-out-parent-is-file": lambda g, b, t: _enc(g["csv"], g["key"], g["plain"] / "o.parquet"),
    "encode-out-is-folder": lambda g, b, t: _enc(g["csv"], g["key"], t, "--overwrite"),
    "encode-out-unwritable": lambda g, b, t: _enc(g["csv"], g["key"], Path("/sys/o.parquet")),
    # encode: bad content
    "encode-empty-file": lambda g, b, t: _enc(b["empty"], g["key"], t / "o.parquet"),
    "encode-binary-garbage": lambda g, b, t: _enc(b["binary"], g["key"], t / "o.parquet"),
    "encode-ragged-csv": lambda g, b, t: _enc(b["ragged"], g["key"], t / "o.parquet"),
    "encode-missing-columns": lambda g, b, t: _enc(b["no_columns"], g["key"], t / "o.parquet"),
    "encode-wrong-type-parquet": lambda g, b, t: _enc(b["nested_parquet"], g["key"], t / "o.parquet"),
    "encode-future-birth-date": lambda g, b, t: _enc(b["future_dob"], g["key"], t / "o.parquet"),
    "encode-unclosed-quote": lambda g, b, t: _enc(_unclosed_quote_csv(t), g["key"], t / "o.parquet"),
    # encode: bad key, schema, options
    "encode-missing-key": lambda g, b, t: _enc(g["csv"], t / "none.key", t / "o.parquet"),
    "encode-key-readable-by-others": lambda g, b, t: _enc(g["csv"], b["open_key"], t / "o.parquet"),
    "encode-key-is-garbage": lambda g, b, t: _enc(g["csv"], b["binary"], t / "o.parquet"),
    "encode-bad-schema": lambda g, b, t: _enc(g["csv"], g["key"], t / "o.parquet", "--schema", str(b["toml"])),
    "encode-bad-agency": lambda g, b, t: ["encode", str(g["csv"]), "--key", str(g["key"]), "--agency", "Police!",
                                          "-o", str(t / "o.parquet")],
    "encode-bad-invalid-option": lambda g, b, t: _enc(g["csv"], g["key"], t / "o.parquet", "--invalid", "ignore"),
    "encode-bad-chunk-rows": lambda g, b, t: _enc(g["csv"], g["key"], t / "o.parquet", "--chunk-rows", "ten"),
    "encode-extra-field-bad-normaliser": lambda g, b, t: _enc(g["csv"], g["key"], t / "o.parquet",
                                                              "--extra-field", "town=soundex"),
    "encode-extra-field-missing-column": lambda g, b, t: _enc(g["csv"], g["key"], t / "o.parquet",
                                                              "--extra-field", "address_line=text"),
    "encode-unknown-option": lambda g, b, t: _enc(g["csv"], g["key"], t / "o.parquet", "--colour"),
    # link
    "link-missing-input": lambda g, b, t: ["link", str(t / "none.parquet"), "-o", str(t / "l.duckdb")],
    "link-csv-input": lambda g, b, t: ["link", str(g["csv"]), "-o", str(t / "l.duckdb")],
    "link-garbage-input": lambda g, b, t: ["link", str(b["binary"]), "-o", str(t / "l.duckdb")],
    "link-out-parent-is-file": lambda g, b, t: ["link", str(g["encoded"]), "-o", str(g["plain"] / "l.duckdb")],
    "link-out-parent-missing": lambda g, b, t: ["link", str(g["encoded"]), "-o", str(t / "no" / "l.duckdb")],
    "link-out-unwritable": lambda g, b, t: ["link", str(g["encoded"]), "-o", "/sys/l.duckdb", "--no-charts"],
    "link-bad-model": lambda g, b, t: ["link", str(g["encoded"]), "-o", str(t / "l.duckdb"), "--model", str(b["json"])],
    "link-bad-threshold": lambda g, b, t: ["link", str(g["encoded"]), "-o", str(t / "l.duckdb"), "--threshold", "2"],
    # synth
    "synth-out-under-file": lambda g, b, t: ["synth", "--people", "5", "--out-dir", str(g["plain"] / "s")],
    "synth-out-is-file": lambda g, b, t: ["synth", "--people", "5", "--out-dir", str(g["plain"])],
    "synth-out-unwritable": lambda g, b, t: ["synth", "--people", "5", "--out-dir", "/sys/simlink-synth"],
    "synth-bad-people": lambda g, b, t: ["synth", "--people", "-3", "--out-dir", str(t / "s")],
    "synth-end-before-start": lambda g, b, t: ["synth", "--people", "5", "--out-dir", str(t / "s"),
                                               "--start", "2025-01-01", "--end", "2024-01-01"],
    # counts
    "counts-missing-db": lambda g, b, t: ["counts", str(t / "none.duckdb")],
    "counts-garbage-db": lambda g, b, t: ["counts", str(b["binary"])],
    "counts-out-under-file": lambda g, b, t: ["counts", str(g["linkage"]), "-o", str(g["plain"] / "c.csv")],
    "counts-out-unwritable": lambda g, b, t: ["counts", str(g["linkage"]), "-o", "/sys/c.csv"],
    "counts-report-under-file": lambda g, b, t: ["counts", str(g["linkage"]), "--report", str(g["plain"] / "r")],
    "counts-report-unwritable": lambda g, b, t: ["counts", str(g["linkage"]), "--report", "/sys/simlink-report"],
    "counts-bad-round": lambda g, b, t: ["counts", str(g["linkage"]), "--round-to", "0"],
    # evaluate, audit, schema, keygen, demo
    "evaluate-missing-truth": lambda g, b, t: ["evaluate", str(g["linkage"]), "--truth", str(t / "none.csv")],
    "evaluate-garbage-linkage": lambda g, b, t: ["evaluate", str(b["binary"]), "--truth", str(g["truth"])],
    "audit-missing": lambda g, b, t: ["audit", str(t / "none.parquet")],
    "audit-garbage": lambda g, b, t: ["audit", str(b["binary"])],
    "audit-json-under-file": lambda g, b, t: ["audit", str(g["encoded"]), "--json", str(g["plain"] / "a.json")],
    "schema-bad-toml": lambda g, b, t: ["schema", "check", str(b["toml"])],
    "schema-missing": lambda g, b, t: ["schema", "show", str(t / "none.toml")],
    "keygen-under-file": lambda g, b, t: ["keygen", str(g["plain"] / "k")],
    "keygen-exists": lambda g, b, t: ["keygen", str(g["key"])],
    "demo-out-under-file": lambda g, b, t: ["demo", "--out-dir", str(g["plain"] / "d")],
}


def _partials(*folders: Path) -> list[Path]:
    return [p for f in folders if f.is_dir() for p in f.rglob("*") if ".partial-" in p.name]


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_mistake_is_one_clean_line(case: str, good: dict, tmp_path: Path) -> None:
    before = sorted(p.name for p in good["csv"].parent.iterdir())
    args = CASES[case](good, _bad_files(tmp_path), tmp_path)
    result = CliRunner().invoke(main, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == "", result.stdout
    assert len(lines) == 1, lines
    assert lines[0].startswith(("simlink: error: ", "Error: ")), lines[0]
    assert "Traceback" not in result.output and "internal error" not in result.output
    for value in SECRET_VALUES:
        assert value not in result.output, value
    assert not _partials(tmp_path, good["csv"].parent)
    assert sorted(p.name for p in good["csv"].parent.iterdir()) == before  # nothing new beside the inputs
    for made in ("o.parquet", "l.duckdb", "c.csv", "s", "r"):
        assert not (tmp_path / made).exists()


def test_errors_name_file_row_and_column(good: dict, tmp_path: Path) -> None:
    files = _bad_files(tmp_path)
    result = CliRunner().invoke(main, _enc(files["future_dob"], good["key"], tmp_path / "o.parquet"))
    assert f"{files['future_dob']}, data row 1, column 'date_of_birth': date is in the future or before 1900" in result.stderr
    result = CliRunner().invoke(main, _enc(good["csv"], files["open_key"], tmp_path / "o.parquet"))
    assert "accessible by other users (mode 0644)" in result.stderr and "chmod 600" in result.stderr


def test_stale_partial_files_of_dead_runs_are_removed(good: dict, tmp_path: Path) -> None:
    dead = 2 ** 22 + 12345  # above pid_max: no such process
    out = tmp_path / "o.parquet"
    stale = [tmp_path / f".o.parquet.partial-{dead}", tmp_path / f".l.duckdb.partial-{dead}",
             tmp_path / f".l.duckdb.partial-{dead}.wal"]
    live = tmp_path / f".o.parquet.partial-{os.getppid()}"  # a running process: left alone
    for path in (*stale, live):
        path.write_bytes(b"half")
    assert CliRunner().invoke(main, _enc(good["csv"], good["key"], out)).exit_code == 0
    result = CliRunner().invoke(main, ["link", str(out), "-o", str(tmp_path / "l.duckdb"), "--no-charts"])
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in stale)
    assert live.exists()


def test_interrupt_wrapped_by_a_library_is_an_interruption(good: dict, tmp_path: Path, monkeypatch) -> None:
    """SIGINT/SIGTERM during a Splink query: Splink re-raises it as its own error; still clean."""
    from splink.internals.exceptions import SplinkException

    import simlink.link.model as link_model

    def interrupted_predict(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000_000):  # the handler runs here, as it would inside a query
                pass
        except KeyboardInterrupt as exc:
            raise SplinkException("Error executing the following sql") from exc
        raise AssertionError("the signal handler did not run")

    monkeypatch.setattr(link_model, "predict", interrupted_predict)
    out = tmp_path / "l.duckdb"
    result = CliRunner().invoke(main, ["link", str(good["encoded"]), "-o", str(out), "--no-charts"])
    assert result.exit_code == 143, result.output
    assert result.stderr.strip().splitlines() == ["simlink: terminated (SIGTERM); no output was written"]
    assert not out.exists() and not _partials(tmp_path)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


def test_sigterm_during_encode_leaves_no_partial_file(tmp_path: Path) -> None:
    """A real SIGTERM (what ``timeout`` sends) to a real process, once its partial file exists."""
    import subprocess
    import sys
    import time

    rows = [(f"R{i}", *AGENCY_ROWS[i % 10][1:]) for i in range(300_000)]
    csv = write_csv(tmp_path / "big.csv", rows)
    key = generate_key_file(tmp_path / "k")
    out = tmp_path / "big.parquet"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "simlink", *_enc(csv, key, out, "--chunk-rows", "1000")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not _partials(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("encode finished before it could be interrupted")
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stdout == ""
    assert stderr.strip().splitlines() == ["simlink: terminated (SIGTERM); no output was written"]
    assert not out.exists() and not _partials(tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)
