"""The demo runs the whole pipeline; nothing it writes outside the agencies' own folder
holds a raw identifier, and the release is protected."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import duckdb
from click.testing import CliRunner

from leakscan import Written
from simlink.cli import main


def _raw_identifiers(agencies: Path) -> set[str]:
    found: set[str] = set()
    for path in agencies.glob("*.csv"):
        if path.name == "truth.csv":
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for column in ("given_name", "family_name", "postcode", "date_of_birth"):
                    value = row[column].strip()
                    if len(value) >= 5 and value.upper() != "UNKNOWN":
                        found.add(value)
    return found


def _written(out: Path) -> list[tuple[str, Written]]:
    """Every file the pipeline wrote beyond the agencies' raw input, as scannable values."""
    outputs = []
    for path in out.rglob("*"):
        if not path.is_file() or "agencies" in path.parts or path.suffix == ".key":
            continue
        if path.suffix == ".duckdb":
            con = duckdb.connect(str(path), read_only=True)
            for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
                written = Written()
                for row in con.execute(f'SELECT * FROM "{table}"').fetchall():
                    written.add(row)
                outputs.append((f"{path.name}:{table}", written))
            con.close()
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            written = Written()
            for column in pq.read_table(path).columns:
                written.add(column.to_pylist())
            # The manifest; ARROW:schema is a base64 blob where short upper-case words occur by chance.
            written.add([pq.ParquetFile(path).metadata.metadata[b"simlink"].decode()])
            outputs.append((path.name, written))
        else:
            text = path.read_bytes().decode("utf-8", "replace")
            for script in _library_scripts() if path.suffix == ".html" else ():
                text = text.replace(script, "")  # Splink's own vega files, inlined for offline use
            # Embedded images are scanned as the bytes they are, not as base64 text, where a
            # five-letter upper-case name turns up by chance (about 1 run in 20 before this).
            text = re.sub(r"base64,([A-Za-z0-9+/=]+)",
                          lambda m: base64.b64decode(m.group(1)).decode("latin-1"), text)
            written = Written()
            written.add([text])
            outputs.append((path.name, written))
    return outputs


def _library_scripts() -> list[str]:
    """The third-party scripts Splink ships (their text has words like 'Brown' in it)."""
    import splink

    folder = Path(splink.__file__).parent / "internals" / "files" / "external_js"
    return [f.read_text(encoding="utf-8") for f in folder.rglob("*") if f.is_file()]


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--people", "400", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "PROTECTED" in result.output and "UNPROTECTED" not in result.output
    f1 = float(result.output.split("pairwise precision")[1].split("F1")[1].split()[0])
    assert f1 > 0.95
    assert (out / "report" / "report.html").exists()

    identifiers = _raw_identifiers(out / "agencies")
    assert len(identifiers) > 300
    outputs = _written(out)
    assert any(name.startswith("linkage.duckdb:event_person") for name, _ in outputs)
    console = Written()
    console.add([result.output])
    for name, written in outputs + [("console", console)]:
        assert not written.leaked(identifiers), f"raw identifier found in {name}"
    # The scan is not vacuous: the agencies' own record references are in the linkage output.
    event_person = dict(outputs)["linkage.duckdb:event_person"]
    assert event_person.leaked({"police", "ed"}) == ["ed", "police"]


def test_demo_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--people", "60"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"
